//! The sweeper of abandoned uploads: an upload never completed is removed, with whatever
//! was put to its URL, `media.abandoned_upload_hours` after the URL expired. Every worker
//! node may sweep at once: the row goes first (`WHERE state = 'pending'`), and only the
//! one that removed it removes the object, so a complete racing the sweep either wins
//! (and keeps its object) or finds the upload gone.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::MediaService;

/// How often the sweeper looks.
const EVERY: Duration = Duration::from_secs(600);
/// Uploads removed per pass at most.
const PER_PASS: i64 = 500;

impl MediaService {
    /// Removes abandoned uploads; returns how many.
    pub async fn sweep_abandoned(&self) -> anyhow::Result<usize> {
        let grace = i64::try_from(self.settings.abandoned_upload_hours)
            .unwrap_or(i64::MAX / 3_600_000)
            .saturating_mul(3_600_000);
        let before = self.clock.now_ms().saturating_sub(grace);
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM media_uploads WHERE state = 'pending' AND expires_at < $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(before)
        .bind(PER_PASS)
        .fetch_all(self.db.reader())
        .await?;
        let mut removed = 0;
        for id in ids {
            let gone = sqlx::query("DELETE FROM media_uploads WHERE id = $1 AND state = 'pending'")
                .bind(&id)
                .execute(self.db.writer())
                .await?;
            if gone.rows_affected() == 1 {
                self.originals.delete(&id).await?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "abandoned uploads removed");
        }
        metrics::counter!("media_uploads_abandoned_total").increment(removed as u64);
        Ok(removed)
    }
}

/// Sweeps every [`EVERY`] until `stop`.
pub(crate) async fn sweeping(media: Arc<MediaService>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        if let Err(e) = media.sweep_abandoned().await {
            tracing::warn!(error = %e, "sweeping abandoned uploads failed; trying again later");
        }
    }
}
