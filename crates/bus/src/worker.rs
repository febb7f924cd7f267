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

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::SharedClock;
use matsuri_db::{Db, Dialect, Tx};

use crate::nats::{self, NatsLink, Outbound, Outgoing};
use crate::{Event, SharedConsumer};

/// One consumer group's subscription to one topic.
#[derive(Clone)]
pub struct Subscription {
    pub topic: &'static str,
    pub group: &'static str,
    pub consumer: SharedConsumer,
    /// Attempts before the event is dead (default 3).
    pub max_attempts: i64,
    /// A handler running longer than this has failed.
    pub deadline: Duration,
}

impl Subscription {
    pub fn new(topic: &'static str, group: &'static str, consumer: SharedConsumer) -> Self {
        Self {
            topic,
            group,
            consumer,
            max_attempts: 3,
            deadline: Duration::from_secs(30),
        }
    }

    pub fn with_max_attempts(mut self, max_attempts: i64) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long a worker may hold the cursor before another may take over.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.deadline.as_millis().saturating_mul(4))
            .unwrap_or(i64::MAX / 4)
            .max(60_000)
    }
}

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
}

/// One key's run through a batch: how many it handled, the event that failed and why,
/// and the events of the key left behind it.
type UnitResult = (i64, Option<(Logged, String)>, Vec<Logged>);

/// What a batch's handling left to record.
#[derive(Default)]
struct BatchOutcome {
    handled: i64,
    failures: Vec<(Logged, i64, String)>,
    queued: Vec<Logged>,
}

/// Events of one group handled at once (each of a different key).
const HANDLERS_AT_ONCE: usize = 32;

/// Events relayed and handled in a pass that count as a busy log: the next pass follows at
/// once. A pass with fewer waits `GATHER_TRICKLE` first.
const FULL_PASS: usize = 100;
const GATHER_TRICKLE: Duration = Duration::from_millis(20);
/// How often a worker without a subscription's turn on JetStream asks for it again.
const TURN_POLL: Duration = Duration::from_secs(2);
/// How often the holder of a subscription's turn on JetStream looks for parked events
/// come due.
const RETRY_EVERY: Duration = Duration::from_millis(100);
const BASE_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 300_000;
/// Serialises relays on PostgreSQL ("outbox" in ASCII).
const RELAY_LOCK: i64 = 0x0000_6f75_7462_6f78;

/// An event read from the log, with its position.
#[derive(Clone)]
pub(crate) struct Logged {
    pub(crate) seq: i64,
    pub(crate) event: Event,
}

impl Bus {
    pub fn new(db: Db, clock: SharedClock, subscriptions: Vec<Subscription>) -> Self {
        Self {
            db,
            clock,
            subscriptions: Arc::new(subscriptions),
            transport: Transport::Sql,
            relay_batch: 2_000,
            read_batch: 1_000,
        }
    }

    /// The same bus over another transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
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
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(idle) => {}
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

    /// Leases the subscription's cursor, retries its due parked events and handles its
    /// next batch. Another worker holding the lease means there is nothing to do here.
    async fn advance(&self, sub: &Subscription) -> anyhow::Result<usize> {
        let token = matsuri_core::ids::new_uuid_v7();
        let Some(position) = self.take_turn(sub, &token).await? else {
            return Ok(0);
        };
        let result = async {
            let retried = self.retry_parked(sub).await?;
            let handled = self.handle_next_batch(sub, position, &token).await?;
            anyhow::Ok(retried + handled)
        }
        .await;
        self.end_turn(sub, &token).await?;
        result
    }

    /// Takes the subscription's turn (its cursor's lease) for the holder of `token`, when
    /// it is free, has run out, or is this holder's already; returns the cursor's
    /// position, or `None` while another holds it.
    async fn take_turn(&self, sub: &Subscription, token: &str) -> anyhow::Result<Option<i64>> {
        let now = self.clock.now_ms();
        Ok(sqlx::query_scalar(
            "INSERT INTO bus_cursors (group_name, topic, position, leased_until, lease_token) VALUES ($1, $2, 0, $3, $4) \
             ON CONFLICT (group_name, topic) DO UPDATE SET leased_until = excluded.leased_until, \
               lease_token = excluded.lease_token \
             WHERE bus_cursors.leased_until <= $5 OR bus_cursors.lease_token = $4 \
             RETURNING position",
        )
        .bind(sub.group)
        .bind(sub.topic)
        .bind(self.turn_until(sub))
        .bind(token)
        .bind(now)
        .fetch_optional(self.db.writer())
        .await?)
    }

    /// When a turn on the subscription taken or renewed now runs out.
    fn turn_until(&self, sub: &Subscription) -> i64 {
        self.clock.now_ms().saturating_add(sub.lease_ms())
    }

    /// Gives the subscription's turn up, if `token` still holds it.
    async fn end_turn(&self, sub: &Subscription, token: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE bus_cursors SET leased_until = 0 WHERE group_name = $1 AND topic = $2 AND lease_token = $3")
            .bind(sub.group)
            .bind(sub.topic)
            .bind(token)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Handles the parked events whose time has come and that are first of their key.
    async fn retry_parked(&self, sub: &Subscription) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let due: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT p.event_id, p.seq, p.attempts FROM bus_parked p \
             WHERE p.group_name = $1 AND p.topic = $2 AND p.status = 'pending' AND p.next_attempt_at <= $3 \
             AND (p.event_key IS NULL OR NOT EXISTS (\
               SELECT 1 FROM bus_parked q WHERE q.group_name = p.group_name AND q.topic = p.topic \
               AND q.event_key = p.event_key AND q.status = 'pending' AND q.seq < p.seq)) \
             ORDER BY p.seq LIMIT $4",
        )
        .bind(sub.group)
        .bind(sub.topic)
        .bind(now)
        .bind(self.read_batch)
        .fetch_all(self.db.reader())
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut events = self
            .load_events(due.iter().map(|(id, _, _)| id.as_str()))
            .await?;
        let attempts: Vec<(Event, i64)> = due
            .into_iter()
            .filter_map(|(id, _, attempts)| events.remove(&id).map(|e| (e, attempts + 1)))
            .collect();
        let outcomes: Vec<(Event, i64, Result<(), String>)> = futures::stream::iter(attempts)
            .map(|(event, attempt)| async move {
                let outcome = handle(sub, &event, attempt).await;
                (event, attempt, outcome)
            })
            .buffer_unordered(HANDLERS_AT_ONCE)
            .collect()
            .await;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let (mut ok, mut failed) = (0_i64, 0_i64);
        for (event, attempt, outcome) in &outcomes {
            match outcome {
                Ok(()) => {
                    ok += 1;
                    sqlx::query("DELETE FROM bus_parked WHERE group_name = $1 AND topic = $2 AND event_id = $3")
                        .bind(sub.group)
                        .bind(sub.topic)
                        .bind(&event.id)
                        .execute(&mut *tx)
                        .await?;
                }
                Err(error) => {
                    failed += 1;
                    self.record_failure(&mut tx, sub, &event.id, *attempt, error, now)
                        .await?;
                }
            }
        }
        count(&mut tx, sub, ok, failed).await?;
        tx.commit().await?;
        Ok(outcomes.len())
    }

    /// Reads the next batch after `position`, handles it, parks what failed and what
    /// waits behind it, and moves the cursor past the batch.
    async fn handle_next_batch(
        &self,
        sub: &Subscription,
        position: i64,
        token: &str,
    ) -> anyhow::Result<usize> {
        let rows: Vec<(i64, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT seq, id, event_key, payload, created_at FROM outbox WHERE topic = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(sub.topic)
        .bind(position)
        .bind(self.read_batch)
        .fetch_all(self.db.reader())
        .await?;
        let Some(last_seq) = rows.last().map(|r| r.0) else {
            return Ok(0);
        };
        let logged: Vec<Logged> = rows
            .into_iter()
            .map(|(seq, id, key, payload, created_at)| Logged {
                seq,
                event: Event {
                    id,
                    topic: sub.topic.to_owned(),
                    key,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    created_at,
                },
            })
            .collect();
        let count_read = logged.len();
        let outcome = self.handle_batch(sub, logged, 1).await?;
        let mut tx = self.db.begin().await?;
        self.record_batch(&mut tx, sub, outcome).await?;
        let moved = sqlx::query(
            "UPDATE bus_cursors SET position = $4 WHERE group_name = $1 AND topic = $2 AND lease_token = $3 AND position = $5",
        )
        .bind(sub.group)
        .bind(sub.topic)
        .bind(token)
        .bind(last_seq)
        .bind(position)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            // The lease ran out and another worker took over; it handles this batch again.
            tx.rollback().await?;
            tracing::warn!(
                group = sub.group,
                "lost the cursor lease while handling a batch"
            );
            return Ok(0);
        }
        tx.commit().await?;
        Ok(count_read)
    }

    /// Handles a batch read in log order: events of one key one after another (a failure
    /// leaves the rest of its key queued), different keys at once; keys already waiting
    /// behind a parked event queue up untouched. `attempt` is the attempt this is.
    async fn handle_batch(
        &self,
        sub: &Subscription,
        batch: Vec<Logged>,
        attempt: i64,
    ) -> anyhow::Result<BatchOutcome> {
        let blocked: FxHashSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT event_key FROM bus_parked WHERE group_name = $1 AND topic = $2 \
             AND status = 'pending' AND event_key IS NOT NULL",
        )
        .bind(sub.group)
        .bind(sub.topic)
        .fetch_all(self.db.reader())
        .await?
        .into_iter()
        .collect();
        let mut outcome = BatchOutcome::default();
        let (ready, queued): (Vec<Logged>, Vec<Logged>) = batch
            .into_iter()
            .partition(|l| !l.event.key.as_ref().is_some_and(|k| blocked.contains(k)));
        outcome.queued = queued;
        if ready.len() > 1 && handle_together(sub, &ready).await {
            outcome.handled = i64::try_from(ready.len()).unwrap_or(i64::MAX);
            return Ok(outcome);
        }
        // A unit per key (and per event without one), in the order they first appear.
        let mut unit_of_key: FxHashMap<&str, usize> = FxHashMap::default();
        let mut count = 0;
        let mut fresh_unit = || {
            count += 1;
            count - 1
        };
        let unit_of: Vec<usize> = ready
            .iter()
            .map(|logged| match logged.event.key.as_deref() {
                Some(key) => *unit_of_key.entry(key).or_insert_with(&mut fresh_unit),
                None => fresh_unit(),
            })
            .collect();
        let mut units: Vec<Vec<Logged>> = vec![Vec::new(); count];
        for (logged, unit) in ready.into_iter().zip(unit_of) {
            units[unit].push(logged);
        }
        let results: Vec<UnitResult> = futures::stream::iter(units)
            .map(|unit| async move {
                let mut handled = 0;
                let mut failure = None;
                let mut events = unit.into_iter();
                for logged in events.by_ref() {
                    match handle(sub, &logged.event, attempt).await {
                        Ok(()) => handled += 1,
                        Err(error) => {
                            failure = Some((logged, error));
                            break;
                        }
                    }
                }
                (handled, failure, events.collect())
            })
            .buffer_unordered(HANDLERS_AT_ONCE)
            .collect()
            .await;
        for (handled, failure, behind) in results {
            outcome.handled += handled;
            if let Some((logged, error)) = failure {
                outcome.failures.push((logged, attempt, error));
            }
            outcome.queued.extend(behind);
        }
        Ok(outcome)
    }

    /// Parks what failed (with its next attempt) and what waits behind it, and adds to the
    /// subscription's counters.
    async fn record_batch(
        &self,
        tx: &mut Tx,
        sub: &Subscription,
        outcome: BatchOutcome,
    ) -> anyhow::Result<()> {
        let failed = self.park_outcome(tx, sub, &outcome).await?;
        count(tx, sub, outcome.handled, failed).await?;
        Ok(())
    }

    /// Parks what failed (with its next attempt) and what waits behind it; returns how
    /// many failed.
    async fn park_outcome(
        &self,
        tx: &mut Tx,
        sub: &Subscription,
        outcome: &BatchOutcome,
    ) -> anyhow::Result<i64> {
        let now = self.clock.now_ms();
        for (logged, attempt, error) in &outcome.failures {
            park(tx, sub, logged, 0, now).await?;
            self.record_failure(tx, sub, &logged.event.id, *attempt, error, now)
                .await?;
        }
        for logged in &outcome.queued {
            park(tx, sub, logged, 0, now).await?;
        }
        Ok(i64::try_from(outcome.failures.len()).unwrap_or(i64::MAX))
    }

    /// How far this stream holds the log.
    async fn published_upto(&self, link: &NatsLink) -> anyhow::Result<i64> {
        let upto: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM bus_nats_published WHERE stream = $1")
                .bind(link.stream_name())
                .fetch_optional(self.db.reader())
                .await?;
        Ok(upto.unwrap_or(0))
    }

    /// Sends the next batch of the log after `sent` (moving it on) through `out`, and
    /// records how far the stream has stored it. Returns how many events were sent.
    async fn publish_next(
        &self,
        link: &NatsLink,
        out: &mut Outgoing<'_>,
        sent: &mut i64,
    ) -> anyhow::Result<usize> {
        let rows: Vec<(i64, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT seq, id, topic, event_key, payload, created_at FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(*sent)
        .bind(self.relay_batch)
        .fetch_all(self.db.reader())
        .await?;
        let count = rows.len();
        for (seq, id, topic, key, payload, created_at) in rows {
            out.add(Outbound {
                seq,
                id,
                topic,
                key,
                payload,
                created_at,
            })
            .await?;
            *sent = seq;
        }
        self.record_stored(link, out).await?;
        Ok(count)
    }

    /// Records how far the stream has stored the log, if that moved.
    async fn record_stored(&self, link: &NatsLink, out: &mut Outgoing<'_>) -> anyhow::Result<()> {
        let Some(stored) = out.take_stored() else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO bus_nats_published (stream, seq) VALUES ($1, $2) \
             ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq WHERE bus_nats_published.seq < excluded.seq",
        )
        .bind(link.stream_name())
        .bind(stored)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Sends what `out` has gathered, waits until the stream has stored everything sent,
    /// and records that.
    async fn settle(&self, link: &NatsLink, out: &mut Outgoing<'_>) -> anyhow::Result<()> {
        out.settle().await?;
        self.record_stored(link, out).await
    }

    /// Publishes the next batch of the log and waits until the stream has stored it.
    async fn publish_once(&self, link: &NatsLink) -> anyhow::Result<usize> {
        let Some(_turn) = link.publishing_turn() else {
            return Ok(0);
        };
        let mut sent = self.published_upto(link).await?;
        let mut out = link.outgoing();
        let count = self.publish_next(link, &mut out, &mut sent).await?;
        self.settle(link, &mut out).await?;
        Ok(count)
    }

    /// Publishes the log to the stream as the relay orders it, until `stop` is cancelled;
    /// one task per process does (the others wait their turn). Reading the next batch and
    /// sending it overlap with waiting for the acknowledgements of the last.
    async fn publish(self, link: Arc<NatsLink>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let result = match link.publishing_turn() {
                Some(_turn) => self.publish_while_turn(&link, &stop).await,
                None => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(error = format!("{e:#}"), "publishing to JetStream failed");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn publish_while_turn(
        &self,
        link: &NatsLink,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut sent = self.published_upto(link).await?;
        let mut out = link.outgoing();
        let mut idle = Duration::ZERO;
        loop {
            let count = self.publish_next(link, &mut out, &mut sent).await?;
            idle = if count > 0 {
                Duration::ZERO
            } else {
                self.settle(link, &mut out).await?;
                (idle * 2).clamp(Duration::from_millis(2), Duration::from_millis(200))
            };
            if idle > Duration::ZERO {
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }

    /// Takes the subscription's turn, retries its due parked events, reads what its
    /// JetStream consumer has waiting once, handles it and gives the turn back. Nothing to
    /// do while another worker holds it.
    async fn fetch_once(&self, link: &NatsLink, sub: &Subscription) -> anyhow::Result<usize> {
        let token = matsuri_core::ids::new_uuid_v7();
        if self.take_turn(sub, &token).await?.is_none() {
            return Ok(0);
        }
        let result = async {
            let retried = self.retry_parked(sub).await?;
            link.claim(sub).await?;
            let messages = link.fetch(sub).await?;
            Ok(retried + self.handle_nats_messages(sub, messages, &token).await?)
        }
        .await;
        self.end_turn(sub, &token).await?;
        result
    }

    /// Follows subscription `index`'s JetStream consumer until `stop` is cancelled: waits
    /// for the subscription's turn, then reads the consumer as a continuous stream,
    /// handling what has arrived a batch at a time (the next messages are on their way
    /// while a batch is handled), retrying parked events as they come due and renewing the
    /// turn as it goes. A broken stream is opened again; a lost turn is waited for again.
    async fn follow(self, link: Arc<NatsLink>, index: usize, stop: CancellationToken) {
        let sub = &self.subscriptions[index];
        let token = matsuri_core::ids::new_uuid_v7();
        while !stop.is_cancelled() {
            let pause = match self.follow_turn(&link, sub, &token, &stop).await {
                Ok(true) => Duration::from_secs(1),
                Ok(false) => TURN_POLL,
                Err(e) => {
                    tracing::warn!(
                        group = sub.group,
                        error = format!("{e:#}"),
                        "following the JetStream consumer failed"
                    );
                    // Looked up (or made) afresh in case it was deleted.
                    link.forget(sub).await;
                    Duration::from_secs(1)
                }
            };
            if stop.is_cancelled() {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        if let Err(e) = self.end_turn(sub, &token).await {
            tracing::warn!(
                group = sub.group,
                error = format!("{e:#}"),
                "cannot give the subscription's turn up"
            );
        }
    }

    /// One spell of [`Self::follow`]: false when another worker holds the turn, true when
    /// the turn was lost or the stream ended, an error when reading or handling failed.
    async fn follow_turn(
        &self,
        link: &NatsLink,
        sub: &Subscription,
        token: &str,
        stop: &CancellationToken,
    ) -> anyhow::Result<bool> {
        if self.take_turn(sub, token).await?.is_none() {
            return Ok(false);
        }
        link.claim(sub).await?;
        let batch = usize::try_from(self.read_batch).unwrap_or(1_000);
        let mut stream = link.messages(sub).await?;
        let every = Duration::from_millis(u64::try_from(sub.lease_ms() / 4).unwrap_or(15_000));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => return Ok(true),
                _ = renew.tick() => {
                    if self.take_turn(sub, token).await?.is_none() {
                        tracing::warn!(group = sub.group, "another worker took the subscription's turn");
                        return Ok(true);
                    }
                    continue;
                }
                _ = retry.tick() => {
                    self.retry_parked(sub).await?;
                    continue;
                }
                first = stream.next() => first,
            };
            let Some(first) = first else {
                return Ok(true);
            };
            let (messages, broken) = gather(&mut stream, first, batch, sub).await;
            self.handle_nats_messages(sub, messages, token).await?;
            renew.reset();
            anyhow::ensure!(!broken, "the JetStream stream broke");
        }
    }

    /// Handles messages from the subscription's JetStream consumer, records the outcome,
    /// then acknowledges them.
    async fn handle_nats_messages(
        &self,
        sub: &Subscription,
        messages: Vec<async_nats::jetstream::Message>,
        token: &str,
    ) -> anyhow::Result<usize> {
        if messages.is_empty() {
            return Ok(0);
        }
        let mut fresh = Vec::new();
        let mut dead_on_arrival = Vec::new();
        // The batch is acknowledged by its message furthest along the stream.
        let mut last = None;
        for message in &messages {
            let info = message.info().ok();
            let stream_seq = info.as_ref().map_or(0, |i| i.stream_sequence);
            if last.is_none_or(|(seq, _)| seq < stream_seq) {
                last = Some((stream_seq, message));
            }
            let Some(events) = nats::decode(sub.topic, message.headers.as_ref(), &message.payload)
            else {
                tracing::warn!(subject = %message.subject, "a message that is not matsuri's; acknowledging it");
                continue;
            };
            if info.map_or(1, |i| i.delivered) > sub.max_attempts {
                dead_on_arrival.extend(events);
            } else {
                fresh.extend(events);
            }
        }
        let last_seq = fresh
            .iter()
            .chain(&dead_on_arrival)
            .map(|l| l.seq)
            .max()
            .unwrap_or(0);
        let mut outcome = self.handle_batch(sub, fresh, 1).await?;
        for logged in dead_on_arrival {
            outcome.failures.push((
                logged,
                sub.max_attempts,
                "the worker handling it stopped before it finished".to_owned(),
            ));
        }
        let held = if outcome.failures.is_empty() && outcome.queued.is_empty() {
            // The usual batch: one statement, no transaction around it.
            passed(
                sub,
                token,
                last_seq,
                outcome.handled,
                0,
                self.turn_until(sub),
            )
            .execute(self.db.writer())
            .await?
            .rows_affected()
                == 1
        } else {
            let mut tx = self.db.begin().await?;
            let failed = self.park_outcome(&mut tx, sub, &outcome).await?;
            let held = passed(
                sub,
                token,
                last_seq,
                outcome.handled,
                failed,
                self.turn_until(sub),
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if held {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            held
        };
        // Without the turn, another worker has made the consumer again and reads these
        // messages anew; acknowledging them here could skip some of its own.
        anyhow::ensure!(held, "another worker took the subscription's turn");
        if outcome.handled > 0 {
            metrics::counter!("matsuri_bus_processed_total", "group" => sub.group)
                .increment(outcome.handled.unsigned_abs());
        }
        if let Some((_, message)) = last {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging to JetStream: {e}"))?;
        }
        Ok(messages.len())
    }

    /// The events with these ids.
    async fn load_events<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> anyhow::Result<HashMap<String, Event>> {
        let ids: Vec<&str> = ids.collect();
        let sql = format!(
            "SELECT id, topic, event_key, payload, created_at FROM outbox WHERE id IN ({})",
            matsuri_db::parameter_list(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, Option<String>, String, i64)>(
            sqlx::AssertSqlSafe(sql),
        );
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        Ok(rows
            .into_iter()
            .map(|(id, topic, key, payload, created_at)| {
                let event = Event {
                    id: id.clone(),
                    topic,
                    key,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    created_at,
                };
                (id, event)
            })
            .collect())
    }

    /// After a failed attempt: the next attempt with backoff, or, after the last, dead.
    async fn record_failure(
        &self,
        tx: &mut Tx,
        sub: &Subscription,
        event_id: &str,
        attempt: i64,
        error: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        metrics::counter!("matsuri_bus_failed_total", "group" => sub.group).increment(1);
        if attempt < sub.max_attempts {
            tracing::info!(
                group = sub.group,
                event_id,
                attempt,
                error,
                "delivery failed; will retry"
            );
            sqlx::query(
                "UPDATE bus_parked SET attempts = $4, last_error = $5, next_attempt_at = $6 \
                 WHERE group_name = $1 AND topic = $2 AND event_id = $3",
            )
            .bind(sub.group)
            .bind(sub.topic)
            .bind(event_id)
            .bind(attempt)
            .bind(error)
            .bind(now.saturating_add(backoff_ms(attempt)))
            .execute(&mut **tx)
            .await?;
            return Ok(());
        }
        metrics::counter!("matsuri_bus_dead_total", "group" => sub.group).increment(1);
        tracing::warn!(
            group = sub.group,
            event_id,
            attempt,
            error,
            "delivery is dead"
        );
        sqlx::query(
            "UPDATE bus_parked SET status = 'dead', attempts = $4, last_error = $5 \
             WHERE group_name = $1 AND topic = $2 AND event_id = $3",
        )
        .bind(sub.group)
        .bind(sub.topic)
        .bind(event_id)
        .bind(attempt)
        .bind(error)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO bus_dead_letters (id, group_name, topic, event_id, attempts, last_error, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(matsuri_core::ids::new_uuid_v7())
        .bind(sub.group)
        .bind(sub.topic)
        .bind(event_id)
        .bind(attempt)
        .bind(error)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// How long a follower waits for a batch to fill once its first message is in: long
/// enough that a busy stream is handled in full batches (each batch costs a few SQL
/// statements), short enough not to matter when it is quiet.
const GATHER: Duration = Duration::from_millis(5);

/// A batch of messages starting with `first`, carrying `max` events or a few more: what
/// has already arrived, and what arrives within `GATHER`. Also whether the stream
/// reported an error (it is then opened again).
async fn gather(
    stream: &mut async_nats::jetstream::consumer::pull::Stream,
    first: Result<
        async_nats::jetstream::Message,
        async_nats::jetstream::consumer::pull::MessagesError,
    >,
    max: usize,
    sub: &Subscription,
) -> (Vec<async_nats::jetstream::Message>, bool) {
    let until = tokio::time::Instant::now() + GATHER;
    let mut messages = Vec::new();
    let mut events = 0;
    let mut broken = false;
    let mut next = Some(first);
    while let Some(item) = next.take() {
        match item {
            Ok(message) => {
                events += nats::events_in(&message);
                messages.push(message);
            }
            Err(e) => {
                tracing::warn!(group = sub.group, error = %e, "reading the JetStream consumer failed");
                broken = true;
                break;
            }
        }
        if events >= max {
            break;
        }
        next = match stream.next().now_or_never() {
            Some(item) => item,
            None => tokio::time::timeout_at(until, stream.next())
                .await
                .ok()
                .flatten(),
        };
    }
    (messages, broken)
}

/// Offers a batch, in log order, to the consumer's [`crate::Consumer::handle_all`], with the
/// subscription's deadline. True when all of it took effect; otherwise none of it did,
/// and the events are to be handed over one at a time.
async fn handle_together(sub: &Subscription, batch: &[Logged]) -> bool {
    let events: Vec<&Event> = batch.iter().map(|l| &l.event).collect();
    let span = tracing::info_span!(
        "bus.deliver_batch",
        group = sub.group,
        topic = sub.topic,
        events = events.len()
    );
    let outcome = tokio::time::timeout(sub.deadline, sub.consumer.handle_all(&events))
        .instrument(span)
        .await;
    match outcome {
        Ok(None) => false,
        Ok(Some(Ok(()))) => true,
        Ok(Some(Err(e))) => {
            tracing::debug!(
                group = sub.group,
                error = format!("{e:#}"),
                "a batch failed; handing its events over one at a time"
            );
            false
        }
        Err(_) => {
            tracing::debug!(
                group = sub.group,
                "a batch ran past the deadline; handing its events over one at a time"
            );
            false
        }
    }
}

/// One attempt at one event, with the subscription's deadline.
async fn handle(sub: &Subscription, event: &Event, attempt: i64) -> Result<(), String> {
    let span = tracing::info_span!("bus.deliver", group = sub.group, topic = sub.topic, event_id = %event.id, attempt);
    match tokio::time::timeout(sub.deadline, sub.consumer.handle(event))
        .instrument(span)
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!(
            "handler exceeded its deadline of {:?}",
            sub.deadline
        )),
    }
}

/// Parks an event for the subscription, due at `now`.
async fn park(
    tx: &mut Tx,
    sub: &Subscription,
    logged: &Logged,
    attempts: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bus_parked (group_name, topic, event_id, seq, event_key, status, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (group_name, topic, event_id) DO NOTHING",
    )
    .bind(sub.group)
    .bind(sub.topic)
    .bind(&logged.event.id)
    .bind(logged.seq)
    .bind(logged.event.key.as_deref())
    .bind(attempts)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Adds to the subscription's counters.
async fn count(
    tx: &mut Tx,
    sub: &Subscription,
    processed: i64,
    failed: i64,
) -> Result<(), sqlx::Error> {
    if processed > 0 {
        metrics::counter!("matsuri_bus_processed_total", "group" => sub.group)
            .increment(processed.unsigned_abs());
    }
    sqlx::query("UPDATE bus_cursors SET processed = processed + $3, failed = failed + $4 WHERE group_name = $1 AND topic = $2")
        .bind(sub.group)
        .bind(sub.topic)
        .bind(processed)
        .bind(failed)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// On JetStream: the subscription has passed `position` in the log, handling `processed`
/// events and failing `failed` on the way; its turn, if `token` still holds it, now runs
/// until `until`. Affects no row when another worker has taken the turn.
fn passed<'a>(
    sub: &Subscription,
    token: &'a str,
    position: i64,
    processed: i64,
    failed: i64,
    until: i64,
) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "UPDATE bus_cursors SET \
           position = CASE WHEN position < $4 THEN $4 ELSE position END, \
           processed = processed + $5, failed = failed + $6, leased_until = $7 \
         WHERE group_name = $1 AND topic = $2 AND lease_token = $3",
    )
    .bind(sub.group)
    .bind(sub.topic)
    .bind(token)
    .bind(position)
    .bind(processed)
    .bind(failed)
    .bind(until)
}

/// Exponential backoff with jitter in its upper half: attempt 1 waits 0.25–0.5 s,
/// attempt 2 0.5–1 s, and so on up to five minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let ceiling = BASE_BACKOFF_MS
        .saturating_mul(1_i64 << exp)
        .min(MAX_BACKOFF_MS);
    rand::rng().random_range(ceiling / 2..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..=12 {
            let ceiling = (BASE_BACKOFF_MS << (attempt - 1)).min(MAX_BACKOFF_MS);
            let wait = backoff_ms(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "attempt {attempt}: {wait}"
            );
        }
        assert!(backoff_ms(100) <= MAX_BACKOFF_MS);
    }
}
