//! The relay and the group workers.
//!
//! The relay gives committed outbox events their place in the log (`seq`), a batch at a
//! time and one relay at a time, so the log's order is the order events became visible.
//! Each subscription (a group on a topic) keeps a cursor into the log. A worker leases the
//! cursor, reads the next batch, hands it to the consumer — events of different keys at
//! once, events of one key one after another — and moves the cursor past the batch in one
//! transaction. An event that fails is parked with its next attempt time (exponential
//! backoff with jitter) and the later events of its key are parked behind it, so a key's
//! events are always handled in order; after `max_attempts` the event is dead and goes to
//! the dead letters, which unblocks its key. Handling happens before the cursor moves:
//! a crash means the batch is delivered again (at least once).
//!
//! On JetStream the relay also publishes the log to the stream, and each subscription's
//! follower reads its durable consumer instead of the SQL log, holding the same lease (the
//! subscription's turn) while it does; parking, retries and dead letters stay in SQL, and
//! a batch is acknowledged once its outcome is recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::SharedClock;
use matsuri_db::{Db, Dialect};

use crate::nats::NatsLink;
use crate::subscription::Subscription;

mod delivery;
mod jetstream;
mod retries;

pub use retries::backoff_ms;

/// Where the log goes after the relay has ordered it.
#[derive(Clone, Debug, Default)]
pub enum Transport {
    /// Subscriptions read the log in SQL (`bus_url = "db"`).
    #[default]
    Sql,
    /// The relay publishes the log to JetStream; subscriptions read their consumers.
    Nats(Arc<NatsLink>),
}

/// The event bus: the outbox, the relay, and the subscriptions' workers.
#[derive(Clone)]
pub struct Bus {
    db: Db,
    clock: SharedClock,
    subscriptions: Arc<Vec<Subscription>>,
    transport: Transport,
    relay_batch: i64,
    read_batch: i64,
    nudge: Nudge,
}

/// Wakes an idle bus at once: a producer that wants its event handled soon (a chat
/// message) nudges after its commit instead of waiting for the next poll. Nudges only
/// cut an idle wait short; a bus that is gathering a trickle of events keeps gathering.
#[derive(Clone, Default, Debug)]
pub struct Nudge(Arc<tokio::sync::Notify>);

impl Nudge {
    pub fn nudge(&self) {
        self.0.notify_one();
    }
}

/// Events relayed and handled in a pass that count as a busy log: the next pass follows at
/// once. A pass with fewer waits `GATHER_TRICKLE` first.
const FULL_PASS: usize = 100;
const GATHER_TRICKLE: Duration = Duration::from_millis(20);
/// Serialises relays on PostgreSQL ("outbox" in ASCII).
const RELAY_LOCK: i64 = 0x0000_6f75_7462_6f78;

impl Bus {
    pub fn new(db: Db, clock: SharedClock, subscriptions: Vec<Subscription>) -> Self {
        Self {
            db,
            clock,
            subscriptions: Arc::new(subscriptions),
            transport: Transport::Sql,
            nudge: Nudge::default(),
            relay_batch: 2_000,
            read_batch: 1_000,
        }
    }

    /// The same bus over another transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The same bus, woken by `nudge`.
    pub fn with_nudge(mut self, nudge: Nudge) -> Self {
        self.nudge = nudge;
        self
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Runs the relay and the group workers until `stop` is cancelled; a batch being
    /// handled when it is finishes first. On JetStream each subscription follows its
    /// consumer in a task of its own (when it holds the subscription's turn) and another
    /// task publishes the log, while this one relays.
    pub async fn run(self, stop: CancellationToken) {
        let tasks: Vec<_> = match &self.transport {
            Transport::Sql => Vec::new(),
            Transport::Nats(link) => (0..self.subscriptions.len())
                .map(|i| tokio::spawn(self.clone().follow(link.clone(), i, stop.clone())))
                .chain([tokio::spawn(
                    self.clone().publish(link.clone(), stop.clone()),
                )])
                .collect(),
        };
        let mut idle = Duration::from_millis(20);
        loop {
            let worked = match self.pass(false).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "bus pass failed");
                    0
                }
            };
            idle = if worked >= FULL_PASS {
                Duration::ZERO
            } else if worked > 0 {
                // Events are trickling in: let a few more gather, so that a busy
                // database is not written a handful of events at a time.
                GATHER_TRICKLE
            } else {
                (idle * 2).clamp(Duration::from_millis(5), Duration::from_millis(200))
            };
            let idle_wait = worked == 0;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(idle) => {}
                () = self.nudge.0.notified(), if idle_wait => {
                    idle = Duration::from_millis(5);
                }
            }
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a JetStream follower or publisher panicked");
            }
        }
    }

    /// One pass: relay new events, then advance every subscription by a batch. Returns how
    /// many events were relayed or handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        self.pass(true).await
    }

    /// A pass; on JetStream, `fetch` also publishes a batch, retries each subscription's
    /// due parked events and reads its consumer's waiting messages once (otherwise the
    /// publishing task and the followers do).
    async fn pass(&self, fetch: bool) -> anyhow::Result<usize> {
        let mut worked = self.relay().await?;
        match &self.transport {
            Transport::Sql => {
                for sub in self.subscriptions.iter() {
                    worked += self.advance(sub).await?;
                }
            }
            Transport::Nats(link) => {
                // Publishing and every subscription wait on JetStream round trips, so they
                // take their turns at once rather than one after another. Without `fetch`
                // the followers read and retry.
                if fetch {
                    let handling = self
                        .subscriptions
                        .iter()
                        .map(|sub| self.fetch_once(link, sub));
                    let (published, handled) = tokio::try_join!(
                        self.publish_once(link),
                        futures::future::try_join_all(handling)
                    )?;
                    worked += published + handled.into_iter().sum::<usize>();
                }
            }
        }
        Ok(worked)
    }

    /// Deletes events older than `before` (ms) that every subscription to their topic has
    /// passed (and, on JetStream, that were published), except those parked or dead; and
    /// the applied records older than that. Events of topics nobody subscribes to go once
    /// relayed. Returns how many events went.
    pub async fn prune(&self, before: i64) -> anyhow::Result<u64> {
        let mut passed: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for sub in self.subscriptions.iter() {
            let position: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM bus_cursors WHERE group_name = $1 AND topic = $2")
                    .bind(sub.group)
                    .bind(sub.topic)
                    .fetch_one(self.db.reader())
                    .await?;
            passed
                .entry(sub.topic)
                .and_modify(|p| *p = (*p).min(position))
                .or_insert(position);
        }
        let published = match &self.transport {
            Transport::Nats(link) => {
                sqlx::query_scalar(
                    "SELECT COALESCE(MAX(seq), 0) FROM bus_nats_published WHERE stream = $1",
                )
                .bind(link.stream_name())
                .fetch_one(self.db.reader())
                .await?
            }
            Transport::Sql => i64::MAX,
        };
        let keep = "AND NOT EXISTS (SELECT 1 FROM bus_parked p WHERE p.event_id = outbox.id) \
             AND NOT EXISTS (SELECT 1 FROM bus_dead_letters d WHERE d.event_id = outbox.id)";
        let mut deleted = 0;
        for (topic, position) in &passed {
            deleted += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM outbox WHERE topic = $1 AND seq IS NOT NULL AND seq <= $2 AND created_at < $3 {keep}"
            )))
            .bind(*topic)
            .bind((*position).min(published))
            .bind(before)
            .execute(self.db.writer())
            .await?
            .rows_affected();
        }
        let unsubscribed = if passed.is_empty() {
            String::new()
        } else {
            format!(
                "AND topic NOT IN ({})",
                matsuri_db::parameter_list(3, passed.len())
            )
        };
        let mut orphans = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE seq IS NOT NULL AND seq <= $1 AND created_at < $2 {unsubscribed} {keep}"
        )))
        .bind(published)
        .bind(before);
        for topic in passed.keys() {
            orphans = orphans.bind(*topic);
        }
        deleted += orphans.execute(self.db.writer()).await?.rows_affected();
        sqlx::query("DELETE FROM bus_applied WHERE applied_at < $1")
            .bind(before)
            .execute(self.db.writer())
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "pruned handled events");
        }
        Ok(deleted)
    }

    /// Runs [`Self::prune`] every hour, keeping `retention`, until `stop`.
    pub async fn run_pruning(self, retention: Duration, stop: CancellationToken) {
        let keep = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(3_600)) => {}
            }
            let before = self.clock.now_ms().saturating_sub(keep);
            if let Err(e) = self
                .prune(before)
                .instrument(tracing::info_span!("job.bus_prune"))
                .await
            {
                tracing::warn!(error = format!("{e:#}"), "pruning the event log failed");
            }
        }
    }

    /// Gives the next batch of committed events their places in the log.
    async fn relay(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        if self.db.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RELAY_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let base: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM outbox")
                .fetch_one(&mut *tx)
                .await?;
        // Without statistics SQLite takes `seq IS NULL` for a one-row lookup in the unique
        // index on `seq` and sorts every unrelayed event to find the first few; a backlog
        // made each pass read all of it. The partial index hands them over in order.
        let unrelayed = match self.db.dialect() {
            Dialect::Sqlite => "outbox INDEXED BY outbox_unrelayed",
            Dialect::Postgres => "outbox",
        };
        let relayed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET seq = v.n FROM (\
               SELECT id, $1 + ROW_NUMBER() OVER (ORDER BY id) AS n FROM (\
                 SELECT id FROM {unrelayed} WHERE seq IS NULL ORDER BY id LIMIT $2) AS b) AS v \
             WHERE outbox.id = v.id"
        )))
        .bind(base)
        .bind(self.relay_batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(usize::try_from(relayed).unwrap_or(usize::MAX))
    }
}
