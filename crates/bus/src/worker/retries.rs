//! Retries, parking and dead letters: a failed event is parked with its next attempt
//! (exponential backoff with jitter), the later events of its key wait behind it, and
//! after `max_attempts` it goes to the dead letters, which unblocks its key.

use futures::StreamExt;
use rand::Rng;

use matsuri_db::Tx;

use crate::Event;
use crate::subscription::{Logged, Subscription};

use super::Bus;
use super::delivery::{BatchOutcome, HANDLERS_AT_ONCE, count, handle};

const BASE_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 300_000;

impl Bus {
    /// Handles the parked events whose time has come and that are first of their key.
    pub(super) async fn retry_parked(&self, sub: &Subscription) -> anyhow::Result<usize> {
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

    /// Parks what failed (with its next attempt) and what waits behind it; returns how
    /// many failed.
    pub(super) async fn park_outcome(
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

    /// After a failed attempt: the next attempt with backoff, or, after the last, dead.
    pub(super) async fn record_failure(
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

/// Parks an event for the subscription, due at `now`.
pub(super) async fn park(
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
