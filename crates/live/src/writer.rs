//! The comment writer: accepted comments from every request of this node gather into one
//! transaction (up to `write_batch`), with one `live.comments` event per room for the
//! shown ones, and each request is answered after that commit. A storm of tens of
//! thousands of comments a second is then a few hundred transactions, not tens of
//! thousands; a quiet room's comment still goes at once, alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use matsuri_db::{Db, batches};

use crate::model::{Comment, LiveError};

/// The topic of shown comments.
pub const COMMENTS_TOPIC: &str = "live.comments";

/// A comment as the writer stores it.
#[derive(Debug, Clone)]
pub(crate) struct NewComment {
    pub(crate) comment: Comment,
    pub(crate) user_id: String,
    pub(crate) created_ms: matsuri_core::clock::Millis,
    /// `shown` or `held`.
    pub(crate) status: &'static str,
    pub(crate) score: f64,
    /// Written by one of the room's moderators: it always reaches the viewers.
    pub(crate) moderator: bool,
    pub(crate) display_per_second: i64,
}

/// One comment in a `live.comments` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Staged {
    pub(crate) comment: Comment,
    pub(crate) moderator: bool,
}

/// The payload of a `live.comments` event: a room's comments of one transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CommentsEvent {
    pub(crate) live_id: String,
    pub(crate) display_per_second: i64,
    pub(crate) comments: Vec<Staged>,
}

type Job = (NewComment, oneshot::Sender<Result<(), String>>);

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer's batch tasks (`matsuri_db::batches`); they end when the writer
    /// is dropped.
    pub(crate) fn start(db: Db, nudge: matsuri_bus::Nudge, batch: usize) -> Writer {
        let lanes = batches::lanes_for(&db);
        let jobs = batches::start(
            "live_comments",
            batch.max(1),
            lanes,
            move |jobs: Vec<Job>| {
                let (db, nudge) = (db.clone(), nudge.clone());
                async move {
                    let started = std::time::Instant::now();
                    let written = write(&db, &jobs).await;
                    metrics::histogram!("matsuri_live_write_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::counter!("matsuri_live_comments_written_total")
                        .increment(jobs.len() as u64);
                    if written.is_ok() {
                        nudge.nudge();
                    }
                    let answer = written.map_err(|e| {
                        tracing::error!(error = format!("{e:#}"), "writing comments failed");
                        format!("{e:#}")
                    });
                    for (_, reply) in jobs {
                        let _ = reply.send(answer.clone());
                    }
                    Vec::new()
                }
            },
        );
        Writer { jobs }
    }

    /// Stores the comment; returns once it is committed.
    pub(crate) async fn write(&self, comment: NewComment) -> Result<(), LiveError> {
        let answer = batches::submit(&self.jobs, "comment writer", |reply| (comment, reply))
            .await
            .map_err(anyhow::Error::from)?;
        answer.map_err(|cause| anyhow::anyhow!("writing the comment failed: {cause}").into())
    }
}

/// The columns of one comment row.
const COLUMNS: usize = 9;

async fn write(db: &Db, jobs: &[Job]) -> anyhow::Result<()> {
    let dialect = db.dialect();
    let mut tx = db.begin().await?;
    for chunk in jobs.chunks(matsuri_db::rows_per_statement(COLUMNS)) {
        let sql = format!(
            "INSERT INTO live_comments (id, live_id, user_id, text, likes, created_at, \
             offset_ms, status, score) VALUES {}",
            matsuri_db::value_rows(dialect, chunk.len(), COLUMNS)
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (new, _) in chunk {
            let c = &new.comment;
            insert = insert
                .bind(c.id.as_str())
                .bind(c.live_id.as_str())
                .bind(new.user_id.as_str())
                .bind(c.text.as_str())
                .bind(0_i64)
                .bind(new.created_ms)
                .bind(c.offset_ms)
                .bind(new.status)
                .bind(new.score);
        }
        insert.execute(&mut *tx).await?;
    }
    let mut rooms: BTreeMap<&str, CommentsEvent> = BTreeMap::new();
    for (new, _) in jobs.iter().filter(|(n, _)| n.status == "shown") {
        rooms
            .entry(new.comment.live_id.as_str())
            .or_insert_with(|| CommentsEvent {
                live_id: new.comment.live_id.clone(),
                display_per_second: new.display_per_second,
                comments: Vec::new(),
            })
            .comments
            .push(Staged {
                comment: new.comment.clone(),
                moderator: new.moderator,
            });
    }
    let now = jobs.iter().map(|(n, _)| n.created_ms).max().unwrap_or(0);
    for (live_id, event) in &rooms {
        matsuri_bus::publish(&mut tx, now, COMMENTS_TOPIC, Some(live_id), event).await?;
    }
    tx.commit().await?;
    Ok(())
}
