//! The activity log: append-only, and cheap on the request path. A request hands its event
//! to a bounded queue and goes on; one flusher task writes whatever is waiting as
//! multi-row inserts, so a stampede of views costs the database a few statements, never
//! a transaction per view. When the queue is full an event is dropped and counted
//! (`matsuri_recs_activity_dropped_total`) rather than slowing the shop down.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use matsuri_core::SharedClock;
use matsuri_db::Db;
use matsuri_module::{Activity, ActivityKind};

/// One event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: i64,
    pub user_id: String,
    pub kind: ActivityKind,
    pub product_id: Option<String>,
    pub query: Option<String>,
}

enum Entry {
    Event(Event),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

pub struct ActivityLog {
    db: Db,
    clock: SharedClock,
    queue: mpsc::Sender<Entry>,
    /// Taken by the flusher when it starts.
    waiting: Mutex<Option<mpsc::Receiver<Entry>>>,
    batch: usize,
}

impl ActivityLog {
    pub fn new(db: Db, clock: SharedClock, capacity: usize, batch: usize) -> Self {
        let (queue, waiting) = mpsc::channel(capacity.max(1));
        Self {
            db,
            clock,
            queue,
            waiting: Mutex::new(Some(waiting)),
            batch: batch.max(1),
        }
    }

    /// Answers once everything queued so far is in the database; needs the flusher
    /// ([`ActivityLog::run_flusher`]) running in this process.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Entry::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// The flusher: runs until `stop`, then writes what is left and ends. Only the first
    /// call does anything.
    pub async fn run_flusher(&self, stop: CancellationToken) {
        let taken = self.waiting.lock().ok().and_then(|mut w| w.take());
        let Some(mut waiting) = taken else {
            return;
        };
        let mut entries = Vec::with_capacity(self.batch);
        loop {
            let received = tokio::select! {
                n = waiting.recv_many(&mut entries, self.batch) => n,
                () = stop.cancelled() => {
                    waiting.close();
                    while waiting.recv_many(&mut entries, self.batch).await > 0 {
                        self.write(&mut entries).await;
                    }
                    return;
                }
            };
            if received == 0 {
                return;
            }
            self.write(&mut entries).await;
        }
    }

    async fn write(&self, entries: &mut Vec<Entry>) {
        let mut events = Vec::with_capacity(entries.len());
        let mut flushes = Vec::new();
        for entry in entries.drain(..) {
            match entry {
                Entry::Event(event) => events.push(event),
                Entry::Flush(done) => flushes.push(done),
            }
        }
        if let Err(e) = append(&self.db, &events).await {
            metrics::counter!("matsuri_recs_activity_dropped_total").increment(events.len() as u64);
            tracing::warn!(error = %e, events = events.len(), "activity not written");
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

impl Activity for ActivityLog {
    fn record(
        &self,
        user_id: &str,
        kind: ActivityKind,
        product_id: Option<&str>,
        query: Option<&str>,
    ) {
        let event = Event {
            at: self.clock.now_ms(),
            user_id: user_id.to_owned(),
            kind,
            product_id: product_id.map(str::to_owned),
            query: query.map(str::to_owned),
        };
        if self.queue.try_send(Entry::Event(event)).is_err() {
            metrics::counter!("matsuri_recs_activity_dropped_total").increment(1);
        }
    }
}

const COLUMNS: usize = 6;

/// Appends `events` with multi-row inserts in one transaction.
pub async fn append(db: &Db, events: &[Event]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let per_statement = matsuri_db::rows_per_message(COLUMNS, 130);
    let mut tx = db.begin().await?;
    for chunk in events.chunks(per_statement) {
        let sql = format!(
            "INSERT INTO recs_activity (id, at, user_id, kind, product_id, query) VALUES {}",
            matsuri_db::value_rows(db.dialect(), chunk.len(), COLUMNS)
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            insert = insert
                .bind(matsuri_core::ids::new_uuid_v7())
                .bind(event.at)
                .bind(event.user_id.as_str())
                .bind(event.kind.as_str())
                .bind(event.product_id.as_deref())
                .bind(event.query.as_deref());
        }
        insert.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Deletes events older than `before`, an hour of them at a time so that the writer is
/// never held for long; answers how many went.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    const SLICE: i64 = 3_600_000;
    let mut gone = 0;
    loop {
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(at) FROM recs_activity")
            .fetch_one(db.reader())
            .await?;
        let Some(oldest) = oldest.filter(|at| *at < before) else {
            return Ok(gone);
        };
        gone += sqlx::query("DELETE FROM recs_activity WHERE at < $1")
            .bind(oldest.saturating_add(SLICE).min(before))
            .execute(db.writer())
            .await?
            .rows_affected();
    }
}
