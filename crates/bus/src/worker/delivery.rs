//! Delivery: a subscription's turn (its lease on the cursor), reading the next batch of
//! the log, handing it to the consumer (keys at once, one key's events in order) and
//! recording the outcome with the cursor's move in one transaction.

use std::collections::HashMap;

use futures::StreamExt;
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::Instrument;

use matsuri_db::Tx;

use crate::Event;
use crate::subscription::{Logged, Subscription};

use super::Bus;

/// One key's run through a batch: how many it handled, the event that failed and why,
/// and the events of the key left behind it.
type UnitResult = (i64, Option<(Logged, String)>, Vec<Logged>);

/// What a batch's handling left to record.
#[derive(Default)]
pub(super) struct BatchOutcome {
    pub(super) handled: i64,
    pub(super) failures: Vec<(Logged, i64, String)>,
    pub(super) queued: Vec<Logged>,
}

/// Events of one group handled at once (each of a different key).
pub(super) const HANDLERS_AT_ONCE: usize = 32;

impl Bus {
    /// Leases the subscription's cursor, retries its due parked events and handles its
    /// next batch. Another worker holding the lease means there is nothing to do here.
    pub(super) async fn advance(&self, sub: &Subscription) -> anyhow::Result<usize> {
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
    pub(super) async fn take_turn(
        &self,
        sub: &Subscription,
        token: &str,
    ) -> anyhow::Result<Option<i64>> {
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
    pub(super) fn turn_until(&self, sub: &Subscription) -> i64 {
        self.clock.now_ms().saturating_add(sub.lease_ms())
    }

    /// Gives the subscription's turn up, if `token` still holds it.
    pub(super) async fn end_turn(&self, sub: &Subscription, token: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE bus_cursors SET leased_until = 0 WHERE group_name = $1 AND topic = $2 AND lease_token = $3")
            .bind(sub.group)
            .bind(sub.topic)
            .bind(token)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Reads the next batch after `position`, handles it, parks what failed and what
    /// waits behind it, and moves the cursor past the batch.
    pub(super) async fn handle_next_batch(
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
    pub(super) async fn handle_batch(
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
    pub(super) async fn record_batch(
        &self,
        tx: &mut Tx,
        sub: &Subscription,
        outcome: BatchOutcome,
    ) -> anyhow::Result<()> {
        let failed = self.park_outcome(tx, sub, &outcome).await?;
        count(tx, sub, outcome.handled, failed).await?;
        Ok(())
    }

    /// The events with these ids.
    pub(super) async fn load_events<'a>(
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
}

/// Offers a batch, in log order, to the consumer's [`crate::Consumer::handle_all`], with the
/// subscription's deadline. True when all of it took effect; otherwise none of it did,
/// and the events are to be handed over one at a time.
pub(super) async fn handle_together(sub: &Subscription, batch: &[Logged]) -> bool {
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
pub(super) async fn handle(sub: &Subscription, event: &Event, attempt: i64) -> Result<(), String> {
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

/// Adds to the subscription's counters.
pub(super) async fn count(
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
pub(super) fn passed<'a>(
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
