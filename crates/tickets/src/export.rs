//! The data-export consumer (seed 003 step 5, "DataPlatform"): every `ticket.purchased`
//! event becomes one JSON line in `<data_dir>/exports/ticket-purchases.jsonl`.
//!
//! Delivery is at least once. The bus hands over events in batches: their lines are
//! appended in one write and synced before the events are recorded as applied, in that
//! order, so a crash between the two can repeat lines but never lose one; every line
//! carries its `event_id` for the reader to drop repeats.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use matsuri_bus::{Consumer, Event};
use matsuri_core::SharedClock;
use matsuri_core::timefmt::rfc3339;
use matsuri_db::Db;

pub const DATA_EXPORT_GROUP: &str = "data-export";

pub struct DataExport {
    db: Db,
    clock: SharedClock,
    file: PathBuf,
    /// One append at a time, so lines never interleave.
    writing: Mutex<()>,
}

impl DataExport {
    pub fn new(db: Db, clock: SharedClock, data_dir: &std::path::Path) -> Self {
        Self {
            db,
            clock,
            file: data_dir.join("exports").join("ticket-purchases.jsonl"),
            writing: Mutex::new(()),
        }
    }

    /// The file the lines go to.
    pub fn path(&self) -> &std::path::Path {
        &self.file
    }

    /// Appends the lines of `events` not exported before, in one write and one sync,
    /// then records them as applied.
    async fn export(&self, events: &[&Event]) -> anyhow::Result<()> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let done = {
            let mut conn = self.db.reader().acquire().await?;
            matsuri_bus::applied_among(&mut conn, DATA_EXPORT_GROUP, &ids).await?
        };
        let mut lines = String::new();
        for event in events.iter().filter(|e| !done.contains(&e.id)) {
            let line = serde_json::json!({
                "event_id": event.id,
                "topic": event.topic,
                "occurred_at": rfc3339(event.created_at),
                "purchase": event.payload,
            });
            lines.push_str(&serde_json::to_string(&line)?);
            lines.push('\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        self.append(&lines).await?;
        let mut tx = self.db.begin().await?;
        matsuri_bus::apply_all(&mut tx, DATA_EXPORT_GROUP, &ids, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append(&self, lines: &str) -> anyhow::Result<()> {
        let _one_at_a_time = self.writing.lock().await;
        if let Some(dir) = self.file.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .await?;
        file.write_all(lines.as_bytes()).await?;
        file.sync_data().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for DataExport {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.export(&[event]).await
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        Some(self.export(events).await)
    }
}
