//! The relay and the group workers of the SQL backend.
//!
//! Workers claim due deliveries with one conditional update (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several processes share the work), which also moves the delivery's next
//! attempt past a lease: a worker that dies mid-delivery leaves it to be retried. Within a
//! group, a delivery whose event has a key waits until every earlier event with that key
//! is done or dead, so events of one key are handled in order.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use futures::StreamExt;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::SharedClock;
use matsuri_db::{Db, Dialect};

use crate::{Event, SharedConsumer};

/// One consumer group's subscription to one topic.
#[derive(Clone)]
pub struct Subscription {
    pub topic: &'static str,
    pub group: &'static str,
    pub consumer: SharedConsumer,
    /// Attempts before the delivery is dead (default 3).
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
}

/// The event bus on the SQL outbox.
#[derive(Clone)]
pub struct Bus {
    db: Db,
    clock: SharedClock,
    subscriptions: Arc<Vec<Subscription>>,
    relay_batch: i64,
    delivery_batch: i64,
}

/// Deliveries of one group handled at once (each of a different key).
const HANDLERS_AT_ONCE: usize = 32;

const BASE_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 300_000;

const CLAIM_SQLITE: &str = "UPDATE bus_deliveries SET attempts = attempts + 1, next_attempt_at = $3, updated_at = $2 \
     WHERE group_name = $1 AND event_id IN (\
       SELECT d.event_id FROM bus_deliveries d JOIN outbox o ON o.id = d.event_id \
       WHERE d.group_name = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 AND o.topic = $5 \
       AND (d.event_key IS NULL OR NOT EXISTS (\
         SELECT 1 FROM bus_deliveries e WHERE e.group_name = d.group_name AND e.event_key = d.event_key \
         AND e.status = 'pending' AND e.event_id < d.event_id)) \
       ORDER BY d.event_id LIMIT $4) \
     RETURNING event_id, attempts";

const CLAIM_POSTGRES: &str = "UPDATE bus_deliveries SET attempts = attempts + 1, next_attempt_at = $3, updated_at = $2 \
     WHERE group_name = $1 AND event_id IN (\
       SELECT d.event_id FROM bus_deliveries d JOIN outbox o ON o.id = d.event_id \
       WHERE d.group_name = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 AND o.topic = $5 \
       AND (d.event_key IS NULL OR NOT EXISTS (\
         SELECT 1 FROM bus_deliveries e WHERE e.group_name = d.group_name AND e.event_key = d.event_key \
         AND e.status = 'pending' AND e.event_id < d.event_id)) \
       ORDER BY d.event_id LIMIT $4 FOR UPDATE OF d SKIP LOCKED) \
     RETURNING event_id, attempts";

impl Bus {
    pub fn new(db: Db, clock: SharedClock, subscriptions: Vec<Subscription>) -> Self {
        Self {
            db,
            clock,
            subscriptions: Arc::new(subscriptions),
            relay_batch: 1_000,
            delivery_batch: 500,
        }
    }

    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Runs the relay and the group workers until `stop` is cancelled; a delivery being
    /// handled when it is finishes first.
    pub async fn run(self, stop: CancellationToken) {
        let mut idle = Duration::from_millis(20);
        loop {
            let worked = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "bus pass failed");
                    0
                }
            };
            idle = if worked > 0 {
                Duration::from_millis(1)
            } else {
                (idle * 2).min(Duration::from_millis(200))
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(idle) => {}
            }
        }
    }

    /// One pass: relay new events, then give every group a batch of due deliveries.
    /// Returns how many events were relayed or handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let mut worked = self.relay().await?;
        for sub in self.subscriptions.iter() {
            worked += self.deliver(sub).await?;
        }
        Ok(worked)
    }

    /// Copies new outbox events into a delivery per subscribed group, a batch at a time,
    /// set-based.
    async fn relay(&self) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let sql = match self.db.dialect() {
            Dialect::Sqlite => "SELECT id FROM outbox WHERE relayed = 0 ORDER BY id LIMIT $1",
            Dialect::Postgres => {
                "SELECT id FROM outbox WHERE relayed = 0 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            }
        };
        let ids: Vec<String> = sqlx::query_scalar(sql)
            .bind(self.relay_batch)
            .fetch_all(&mut *tx)
            .await?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            tx.rollback().await?;
            return Ok(0);
        };
        for sub in self.subscriptions.iter() {
            sqlx::query(
                "INSERT INTO bus_deliveries (group_name, event_id, event_key, status, next_attempt_at, updated_at) \
                 SELECT $1, id, event_key, 'pending', $2, $2 FROM outbox \
                 WHERE relayed = 0 AND topic = $3 AND id >= $4 AND id <= $5 \
                 ON CONFLICT (group_name, event_id) DO NOTHING",
            )
            .bind(sub.group)
            .bind(now)
            .bind(sub.topic)
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE outbox SET relayed = 1 WHERE relayed = 0 AND id >= $1 AND id <= $2")
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Claims a batch of one group's due deliveries, handles them (events of different keys
    /// concurrently; the claim never hands out two of one key), records the outcomes.
    async fn deliver(&self, sub: &Subscription) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let lease_ms = i64::try_from(sub.deadline.as_millis()).unwrap_or(i64::MAX / 4) + 5_000;
        let claim = match self.db.dialect() {
            Dialect::Sqlite => CLAIM_SQLITE,
            Dialect::Postgres => CLAIM_POSTGRES,
        };
        let claimed: Vec<(String, i64)> = sqlx::query_as(claim)
            .bind(sub.group)
            .bind(now)
            .bind(now.saturating_add(lease_ms))
            .bind(self.delivery_batch)
            .bind(sub.topic)
            .fetch_all(self.db.writer())
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let events = self
            .load_events(claimed.iter().map(|(id, _)| id.as_str()))
            .await?;
        let outcomes: Vec<(String, i64, Result<(), String>)> = futures::stream::iter(claimed)
            .filter_map(|(event_id, attempts)| {
                let event = events.get(&event_id).cloned();
                async move { event.map(|e| (e, attempts)) }
            })
            .map(|(event, attempts)| async move {
                let span = tracing::info_span!("bus.deliver", group = sub.group, topic = sub.topic, event_id = %event.id, attempt = attempts);
                let outcome = match tokio::time::timeout(sub.deadline, sub.consumer.handle(&event)).instrument(span).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err(format!("handler exceeded its deadline of {:?}", sub.deadline)),
                };
                (event.id, attempts, outcome)
            })
            .buffer_unordered(HANDLERS_AT_ONCE)
            .collect()
            .await;
        let handled = outcomes.len();
        let done: Vec<&str> = outcomes
            .iter()
            .filter(|(_, _, o)| o.is_ok())
            .map(|(id, _, _)| id.as_str())
            .collect();
        self.mark_done(sub, &done).await?;
        for (event_id, attempts, outcome) in &outcomes {
            if let Err(error) = outcome {
                self.record_failure(sub, event_id, *attempts, error).await?;
            }
        }
        Ok(handled)
    }

    /// The claimed events, by id.
    async fn load_events<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> anyhow::Result<HashMap<String, Event>> {
        let ids: Vec<&str> = ids.collect();
        let sql = format!(
            "SELECT id, topic, event_key, payload, created_at FROM outbox WHERE id IN ({})",
            placeholders(ids.len())
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

    async fn mark_done(&self, sub: &Subscription, ids: &[&str]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE bus_deliveries SET status = 'done', last_error = NULL, updated_at = $1 \
             WHERE group_name = $2 AND event_id IN ({})",
            placeholders_from(3, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.clock.now_ms())
            .bind(sub.group);
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(self.db.writer()).await?;
        metrics::counter!("matsuri_bus_processed_total", "group" => sub.group)
            .increment(ids.len() as u64);
        Ok(())
    }

    /// Schedules another attempt with backoff, or, after the last, moves the delivery to
    /// the dead letters.
    async fn record_failure(
        &self,
        sub: &Subscription,
        event_id: &str,
        attempts: i64,
        error: &str,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        metrics::counter!("matsuri_bus_failed_total", "group" => sub.group).increment(1);
        if attempts < sub.max_attempts {
            tracing::info!(
                group = sub.group,
                event_id,
                attempts,
                error,
                "delivery failed; will retry"
            );
            sqlx::query(
                "UPDATE bus_deliveries SET last_error = $3, next_attempt_at = $4, updated_at = $5 \
                 WHERE group_name = $1 AND event_id = $2",
            )
            .bind(sub.group)
            .bind(event_id)
            .bind(error)
            .bind(now.saturating_add(backoff_ms(attempts)))
            .bind(now)
            .execute(self.db.writer())
            .await?;
            return Ok(());
        }
        metrics::counter!("matsuri_bus_dead_total", "group" => sub.group).increment(1);
        tracing::warn!(
            group = sub.group,
            event_id,
            attempts,
            error,
            "delivery is dead"
        );
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE bus_deliveries SET status = 'dead', last_error = $3, updated_at = $4 \
             WHERE group_name = $1 AND event_id = $2",
        )
        .bind(sub.group)
        .bind(event_id)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bus_dead_letters (id, group_name, topic, event_id, attempts, last_error, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(matsuri_core::ids::new_uuid_v7())
        .bind(sub.group)
        .bind(sub.topic)
        .bind(event_id)
        .bind(attempts)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    placeholders_from(1, n)
}

/// `$first, …, $(first + n - 1)`.
fn placeholders_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
