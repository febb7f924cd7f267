//! What the media stories share: an app on a store, an upload from start to complete, the
//! worker run to the end, and the sample photos.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use matsuri_testkit::unique_name;

use crate::helpers::{Answer, Backend, TestApp, service_url, spawn_app_with};

/// The S3 store for one test: `MATSURI_TEST_S3_URL` with a prefix of the test's own;
/// `None` (the run is skipped) outside CI.
pub fn s3_url(test: &str) -> Option<String> {
    let url = service_url("MATSURI_TEST_S3_URL")?;
    let prefix = format!("{test}-{}", unique_name());
    Some(matsuri_core::config::child_url(&url, &prefix))
}

/// An app on `backend` with its blobs in the S3 store at `s3`, or in its folder.
pub async fn media_app(
    backend: Backend,
    s3: Option<String>,
    tweak: impl FnOnce(&mut matsuri_core::Settings),
) -> TestApp {
    spawn_app_with(backend, |settings| {
        if let Some(s3) = s3 {
            settings.blob_url = Some(s3);
        }
        tweak(settings);
    })
    .await
}

/// The originals store of `app`, opened as the app opened it.
pub fn originals(app: &TestApp) -> matsuri_blob::Blobs {
    matsuri_blob::Blobs::open(&app.settings.originals_url()).unwrap()
}

/// The variants store of `app`.
pub fn variants(app: &TestApp) -> matsuri_blob::Blobs {
    matsuri_blob::Blobs::open(&app.settings.variants_url()).unwrap()
}

/// Where the sample photos are: `MATSURI_SAMPLE_IMAGES`, or `../shared/data/images`
/// beside the repository.
pub fn samples() -> PathBuf {
    if let Ok(dir) = std::env::var("MATSURI_SAMPLE_IMAGES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/images")
}

/// A sample photo's bytes.
pub fn sample(name: &str) -> Vec<u8> {
    let path = samples().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A small real JPEG, made here: `width`×`height`, a gradient.
pub fn small_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.extend([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]);
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Asks for an upload URL; the whole answer.
pub async fn presign(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    size: usize,
) -> Answer {
    app.post(
        "/uploads/presigned-url",
        Some(token),
        json!({"filename": filename, "content_type": content_type, "size": size}),
    )
    .await
}

/// PUTs `bytes` to a ticket's URL with `content_type`; the status.
pub async fn put(
    app: &TestApp,
    url: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::StatusCode {
    let url = if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    };
    app.http
        .put(url)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("the store answers")
        .status()
}

/// Presigns, PUTs and completes `bytes` as `content_type`; the complete's answer.
pub async fn upload(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Answer {
    let ticket = presign(app, token, filename, content_type, bytes.len()).await;
    assert_eq!(ticket.status, 201, "{}", ticket.text);
    let url = ticket.body["url"].as_str().unwrap().to_owned();
    assert_eq!(ticket.body["headers"]["Content-Type"], content_type);
    let put = put(app, &url, content_type, bytes).await;
    assert!(put.is_success(), "the PUT: {put}");
    let id = ticket.body["upload_id"].as_str().unwrap();
    app.post(&format!("/uploads/{id}/complete"), Some(token), json!({}))
        .await
}

/// Uploads and processes `bytes`; the image as its owner then sees it.
pub async fn uploaded(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Value {
    let done = upload(app, token, filename, content_type, bytes).await;
    assert_eq!(done.status, 202, "{}", done.text);
    assert_eq!(done.body["status"], "processing");
    let id = done.body["image_id"].as_str().unwrap().to_owned();
    drain(app).await;
    let image = app.get(&format!("/images/{id}"), Some(token)).await;
    assert_eq!(image.status, 200, "{}", image.text);
    image.body
}

/// Runs the bus until nothing is left to handle.
pub async fn drain(app: &TestApp) {
    while app.components.bus.run_once().await.unwrap() > 0 {}
}

/// A GET of an absolute or root-relative URL with `headers`: status, headers and bytes.
pub async fn fetch(
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let url = if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    };
    let mut req = app.http.request(Method::GET, url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.bytes().await.unwrap().to_vec())
}
