//! The log on JetStream: the publisher that sends the relayed log to the stream in runs,
//! and each subscription's follower, which reads its durable consumer while it holds the
//! subscription's turn.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::nats::{self, NatsLink, Outbound, Outgoing};
use crate::subscription::Subscription;

use super::Bus;
use super::delivery::passed;

/// How often a worker without a subscription's turn on JetStream asks for it again.
const TURN_POLL: Duration = Duration::from_secs(2);
/// How often the holder of a subscription's turn on JetStream looks for parked events
/// come due.
const RETRY_EVERY: Duration = Duration::from_millis(100);

impl Bus {
    /// How far this stream holds the log.
    pub(super) async fn published_upto(&self, link: &NatsLink) -> anyhow::Result<i64> {
        let upto: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM bus_nats_published WHERE stream = $1")
                .bind(link.stream_name())
                .fetch_optional(self.db.reader())
                .await?;
        Ok(upto.unwrap_or(0))
    }

    /// Sends the next batch of the log after `sent` (moving it on) through `out`, and
    /// records how far the stream has stored it. Returns how many events were sent.
    pub(super) async fn publish_next(
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
    pub(super) async fn record_stored(
        &self,
        link: &NatsLink,
        out: &mut Outgoing<'_>,
    ) -> anyhow::Result<()> {
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
    pub(super) async fn settle(
        &self,
        link: &NatsLink,
        out: &mut Outgoing<'_>,
    ) -> anyhow::Result<()> {
        out.settle().await?;
        self.record_stored(link, out).await
    }

    /// Publishes the next batch of the log and waits until the stream has stored it.
    pub(super) async fn publish_once(&self, link: &NatsLink) -> anyhow::Result<usize> {
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
    pub(super) async fn publish(self, link: Arc<NatsLink>, stop: CancellationToken) {
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

    pub(super) async fn publish_while_turn(
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
    pub(super) async fn fetch_once(
        &self,
        link: &NatsLink,
        sub: &Subscription,
    ) -> anyhow::Result<usize> {
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
    pub(super) async fn follow(self, link: Arc<NatsLink>, index: usize, stop: CancellationToken) {
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
    pub(super) async fn follow_turn(
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
    pub(super) async fn handle_nats_messages(
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
}

/// How long a follower waits for a batch to fill once its first message is in: long
/// enough that a busy stream is handled in full batches (each batch costs a few SQL
/// statements), short enough not to matter when it is quiet.
pub(super) const GATHER: Duration = Duration::from_millis(5);

/// A batch of messages starting with `first`, carrying `max` events or a few more: what
/// has already arrived, and what arrives within `GATHER`. Also whether the stream
/// reported an error (it is then opened again).
pub(super) async fn gather(
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
