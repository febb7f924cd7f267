//! The `blob` port (`architecture.md` §1): objects by key in a folder (`file://…`, the
//! embedded default) or an S3-compatible bucket (`s3://bucket/prefix?endpoint=…&region=…`,
//! credentials from the usual `AWS_*` variables), through `object_store`. On S3 it also
//! presigns a PUT with the content type folded into the signature, so a client can upload
//! straight to the bucket; a folder cannot sign, and the caller serves its own signed
//! upload endpoint instead.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// A store of objects under one prefix.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Set on S3: the bucket's own client, which signs, and the prefix every key is under.
    s3: Option<(Arc<AmazonS3>, String)>,
    /// Where an object is reachable without us, on S3: `<endpoint>/<bucket>/<prefix>`.
    direct_base: Option<String>,
}

/// What a `HEAD` tells of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
}

impl Blobs {
    /// Opens the store at `url`: `file://<folder>` (made if missing) or
    /// `s3://<bucket>[/<prefix>]?endpoint=<url>&region=<region>` (both query parameters
    /// optional; plain-HTTP endpoints are allowed, for S3-compatible servers on loopback).
    pub fn open(url: &str) -> anyhow::Result<Self> {
        if let Some(folder) = url.strip_prefix("file://") {
            std::fs::create_dir_all(folder).with_context(|| format!("creating {folder}"))?;
            let store = LocalFileSystem::new_with_prefix(folder)
                .with_context(|| format!("opening {folder}"))?;
            return Ok(Self {
                store: Arc::new(store),
                s3: None,
                direct_base: None,
            });
        }
        if url.starts_with("s3://") {
            return Self::open_s3(url);
        }
        anyhow::bail!(
            "unsupported blob url {:?}: expected file://… or s3://…",
            url.split(':').next().unwrap_or_default()
        )
    }

    fn open_s3(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).context("reading the s3:// url")?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .context("an s3:// url names its bucket: s3://<bucket>/…")?
            .to_owned();
        let prefix = parsed.path().trim_matches('/').to_owned();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        let mut endpoint = None;
        for (name, value) in parsed.query_pairs() {
            match name.as_ref() {
                "endpoint" => endpoint = Some(value.trim_end_matches('/').to_owned()),
                "region" => builder = builder.with_region(value.as_ref()),
                other => anyhow::bail!("unknown s3:// url parameter {other:?}"),
            }
        }
        let direct = match &endpoint {
            Some(endpoint) => {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
                format!("{endpoint}/{bucket}")
            }
            None => format!("https://{bucket}.s3.amazonaws.com"),
        };
        let s3 = Arc::new(builder.build().context("configuring the S3 client")?);
        let direct_base = if prefix.is_empty() {
            direct
        } else {
            format!("{direct}/{prefix}")
        };
        Ok(Self {
            store: s3.clone(),
            s3: Some((s3, prefix)),
            direct_base: Some(direct_base),
        })
    }

    /// The object's path: the key under the prefix on S3 (a folder is its own prefix).
    fn path(&self, key: &str) -> Path {
        match &self.s3 {
            Some((_, prefix)) if !prefix.is_empty() => Path::from(format!("{prefix}/{key}")),
            _ => Path::from(key),
        }
    }

    /// Stores `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from_bytes(bytes))
            .await
            .with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => Ok(Some(
                got.bytes()
                    .await
                    .with_context(|| format!("reading {key}"))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {key}"))),
        }
    }

    /// The first `len` bytes of the object at `key` (fewer when it is shorter), or `None`
    /// when there is none.
    pub async fn read_head(&self, key: &str, len: u64) -> anyhow::Result<Option<Bytes>> {
        let Some(meta) = self.head(key).await? else {
            return Ok(None);
        };
        let end = meta.size.min(len);
        if end == 0 {
            return Ok(Some(Bytes::new()));
        }
        match self.store.get_range(&self.path(key), 0..end).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {key}"))),
        }
    }

    /// What the store knows of the object at `key`, or `None` when there is none.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<Meta>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(Meta { size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("looking up {key}"))),
        }
    }

    /// A round trip to the store, for readiness checks: looks up a key that is never
    /// written.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.head(".ping").await.map(|_| ())
    }

    /// Removes the object at `key`; one that is not there is already removed.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("removing {key}"))),
        }
    }

    /// On S3, a URL that lets whoever holds it PUT `key` for `expires_in`, with
    /// `Content-Type: content_type` folded into the signature (another type is refused by
    /// the bucket). `None` on a folder, which cannot sign.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> anyhow::Result<Option<String>> {
        let Some((s3, _)) = &self.s3 else {
            return Ok(None);
        };
        let value = HeaderValue::from_str(content_type).context("a content type")?;
        let options = SignedUrlOptions::default().with_signed_header(
            object_store::signer::HeaderName::from_static("content-type"),
            value,
        );
        let url = s3
            .signed_url_opts(Method::PUT, &self.path(key), expires_in, &options)
            .await
            .with_context(|| format!("presigning a PUT of {key}"))?;
        Ok(Some(url.to_string()))
    }

    /// Where the object at `key` is reachable without us (the bucket's own URL, for a
    /// redirect), on S3 only.
    pub fn direct_url(&self, key: &str) -> Option<String> {
        self.direct_base
            .as_ref()
            .map(|base| format!("{base}/{key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_and_parameters_are_refused() {
        assert!(Blobs::open("ftp://x").is_err());
        assert!(Blobs::open("s3://bucket?colour=blue").is_err());
        assert!(Blobs::open("s3:///nobucket").is_err());
    }
}
