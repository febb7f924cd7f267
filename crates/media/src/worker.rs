//! The image worker (consumer group `media-worker` on `image.uploaded`): takes the
//! original, makes the variants on a blocking thread while holding one of the node's pool
//! permits, stores them in the variants store, and marks the image `completed` — or
//! `failed` with the reason, the original deleted, when the file is no usable image.
//!
//! Every step can run again: variants are written under fixed keys, and the image moves
//! out of `processing` once (`WHERE status = 'processing'`), so a worker killed mid-job
//! leaves the job to be delivered again and the image completes once. An image deleted
//! while its job ran keeps nothing: the worker finds no row to complete and removes what
//! it stored.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use matsuri_bus::{Consumer, Event};
use matsuri_imaging::{Format, Processed};

use crate::images::StoredVariant;
use crate::service::MediaService;

/// The consumer group that makes variants.
pub const GROUP: &str = "media-worker";
/// The consumer group that removes a deleted image's objects.
pub const CLEANUP_GROUP: &str = "media-cleanup";

/// The job of one completed upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub image_id: String,
}

/// A deleted image, whose objects go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    pub image_id: String,
    pub upload_id: String,
}

/// How one job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The variants are stored and the image is `completed`.
    Completed,
    /// The original is no usable image: `failed`, the original gone.
    Failed,
    /// Nothing to do: the image is gone, or no longer `processing`.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

pub(crate) struct Worker(pub(crate) Arc<MediaService>);

#[async_trait::async_trait]
impl Consumer for Worker {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let job: Job = event.decode()?;
        let span = tracing::info_span!("media.process", image_id = %job.image_id);
        self.0.process(&job.image_id).instrument(span).await?;
        Ok(())
    }
}

pub(crate) struct Cleaner(pub(crate) Arc<MediaService>);

#[async_trait::async_trait]
impl Consumer for Cleaner {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let deleted: Deleted = event.decode()?;
        self.0
            .remove_objects(&deleted.image_id, &deleted.upload_id)
            .await
    }
}

impl MediaService {
    /// Runs one image's job. An error (a store or the database unreachable) leaves the
    /// image `processing` for the bus to deliver the job again.
    pub async fn process(&self, image_id: &str) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let outcome = self.process_once(image_id).await;
        if let Ok(outcome) = &outcome {
            metrics::histogram!("media_job_seconds", "outcome" => outcome.as_str())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("media_jobs_total", "outcome" => outcome.as_str()).increment(1);
        }
        outcome
    }

    async fn process_once(&self, image_id: &str) -> anyhow::Result<Outcome> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT upload_id, status, format FROM media_images WHERE id = $1")
                .bind(image_id)
                .fetch_optional(self.db.reader())
                .await?;
        let Some((upload_id, status, format)) = row else {
            return Ok(Outcome::Skipped);
        };
        if status != "processing" {
            return Ok(Outcome::Skipped);
        }
        let format = [Format::Jpeg, Format::Png, Format::Webp]
            .into_iter()
            .find(|f| f.as_str() == format)
            .ok_or_else(|| anyhow::anyhow!("image {image_id} has the format {format}"))?;
        let Some(original) = self.originals.get(&upload_id).await? else {
            return self.fail(image_id, &upload_id, "original_missing").await;
        };
        match self.run_pipeline(original, format).await? {
            Ok(processed) => self.store(image_id, processed).await,
            Err(reason) => self.fail(image_id, &upload_id, reason).await,
        }
    }

    /// Decodes and encodes on a blocking thread, holding one pool permit, so that no more
    /// images than the pool allows are in memory at once and the async executor never
    /// waits on pixels. An unusable image is the reason it failed.
    async fn run_pipeline(
        &self,
        original: Bytes,
        format: Format,
    ) -> anyhow::Result<Result<Processed, &'static str>> {
        let waiting = Instant::now();
        let permit = self.pool.clone().acquire_owned().await?;
        metrics::histogram!("media_pool_wait_seconds").record(waiting.elapsed().as_secs_f64());
        let span = tracing::info_span!("media.pipeline", bytes = original.len());
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(|| matsuri_imaging::process(&original, format))
        })
        .await;
        match result {
            Ok(Ok(processed)) => Ok(Ok(processed)),
            Ok(Err(failure)) => {
                tracing::info!(%failure, "image refused");
                Ok(Err(failure.reason()))
            }
            // The pipeline never panics on input; should it still, the image is unusable,
            // not the node.
            Err(e) if e.is_panic() => {
                tracing::error!("the image pipeline panicked");
                Ok(Err("unreadable"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the variants, then marks the image `completed` with what was learnt of it.
    async fn store(&self, image_id: &str, processed: Processed) -> anyhow::Result<Outcome> {
        let mut stored = Vec::with_capacity(processed.variants.len());
        for variant in processed.variants {
            let etag = StoredVariant::etag_of(&variant.webp);
            let bytes = variant.webp.len() as u64;
            self.variants
                .put(
                    &Self::variant_key(image_id, variant.name),
                    Bytes::from(variant.webp),
                )
                .await?;
            stored.push(StoredVariant {
                name: variant.name.to_owned(),
                width: variant.width,
                height: variant.height,
                bytes,
                etag,
            });
        }
        let taken_at = processed
            .taken_at
            .map(|t| t.assume_utc().unix_timestamp().saturating_mul(1_000));
        let done = sqlx::query(
            "UPDATE media_images SET status = 'completed', width = $2, height = $3, taken_at = $4, \
             variants = $5, processed_at = $6 WHERE id = $1 AND status = 'processing'",
        )
        .bind(image_id)
        .bind(i64::from(processed.width))
        .bind(i64::from(processed.height))
        .bind(taken_at)
        .bind(serde_json::to_string(&stored)?)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Outcome::Completed);
        }
        // Deleted while it ran (or another delivery finished first, which stored the same
        // variants under the same keys): keep the variants only if the image is there.
        if !self.image_exists(image_id).await? {
            self.remove_variants(image_id).await?;
        }
        Ok(Outcome::Skipped)
    }

    /// Marks the image `failed` with `reason` and deletes its original.
    async fn fail(&self, image_id: &str, upload_id: &str, reason: &str) -> anyhow::Result<Outcome> {
        let done = sqlx::query(
            "UPDATE media_images SET status = 'failed', failure_reason = $2, processed_at = $3 \
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(image_id)
        .bind(reason)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        self.originals.delete(upload_id).await?;
        Ok(if done.rows_affected() == 1 {
            Outcome::Failed
        } else {
            Outcome::Skipped
        })
    }

    async fn image_exists(&self, image_id: &str) -> anyhow::Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM media_images WHERE id = $1")
            .bind(image_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(found.is_some())
    }

    async fn remove_variants(&self, image_id: &str) -> anyhow::Result<()> {
        for name in crate::model::VARIANT_NAMES {
            self.variants
                .delete(&Self::variant_key(image_id, name))
                .await?;
        }
        Ok(())
    }

    /// Removes a deleted image's original and variants; removing again does nothing.
    pub(crate) async fn remove_objects(
        &self,
        image_id: &str,
        upload_id: &str,
    ) -> anyhow::Result<()> {
        self.originals.delete(upload_id).await?;
        self.remove_variants(image_id).await
    }
}
