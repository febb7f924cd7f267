//! The data-export consumer (seed 003 step 5, "DataPlatform"): every `ticket.purchased`
//! event becomes one JSON line in `<data_dir>/exports/ticket-purchases.jsonl`.
//!
//! Delivery is at least once. A line is appended (and synced) before the event is
//! recorded as applied, in that order, so a crash between the two can repeat a line but
//! never lose one; every line carries its `event_id` for the reader to drop repeats.

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

    async fn append(&self, line: &str) -> anyhow::Result<()> {
        let _one_at_a_time = self.writing.lock().await;
        if let Some(dir) = self.file.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .await?;
        file.write_all(line.as_bytes()).await?;
        file.write_all(b"\n").await?;
        file.sync_data().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for DataExport {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let done = {
            let mut conn = self.db.reader().acquire().await?;
            matsuri_bus::applied(&mut conn, DATA_EXPORT_GROUP, &event.id).await?
        };
        if done {
            return Ok(());
        }
        let line = serde_json::json!({
            "event_id": event.id,
            "topic": event.topic,
            "occurred_at": rfc3339(event.created_at),
            "purchase": event.payload,
        });
        self.append(&serde_json::to_string(&line)?).await?;
        let mut tx = self.db.begin().await?;
        matsuri_bus::apply_once(&mut tx, DATA_EXPORT_GROUP, &event.id, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}
