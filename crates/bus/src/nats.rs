//! The JetStream transport: the relay publishes the log to a stream, and each
//! subscription reads through its own durable pull consumer. Retries, ordering behind a
//! failed event of the same key, and dead letters work as on the SQL backend (the parked
//! events and the dead letters live in SQL, and only failures touch them).
//!
//! One reader at a time reads a subscription's consumer: the worker holding the
//! subscription's turn (its lease in `bus_cursors`, renewed as it goes). So each key's
//! events are handled in order across processes, and a batch is acknowledged by its last
//! message (acknowledgements are cumulative, which spares the server one per message). A reader
//! taking over from one that died makes the consumer again from the last acknowledgement,
//! so nothing the dead reader had received is skipped. JetStream's `max_deliver` is
//! `max_attempts + 1`: a message delivered again after its reader stalled past the
//! acknowledgement time more often than that is dead on arrival, and still reaches the
//! dead letters.
//!
//! A message carries a run of consecutive events of one topic (at most
//! `EVENTS_PER_MESSAGE`, all from one block of that many positions in the log) as a JSON
//! array, so the server stores, delivers and acknowledges one message where there would be
//! hundreds. Its `Nats-Msg-Id` names its first and last event: a run published again after
//! a failure starts at the same place, ends at the same block boundary, and is dropped as
//! a duplicate. Messages with the event in headers, one each (as published before runs),
//! are read as well.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use tokio::sync::Mutex;

use crate::subscription::Subscription;

mod wire;

use wire::Run;
pub(crate) use wire::{Outbound, decode, events_in};

/// A connection to JetStream and the stream this deployment uses.
pub struct NatsLink {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: String,
    stream: String,
    consumers: Mutex<HashMap<(&'static str, &'static str), PullConsumer>>,
    /// Held while this process publishes, so its workers do not publish the same events.
    publishing: Mutex<()>,
}

impl std::fmt::Debug for NatsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLink")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// How long a pull request waits for a batch to fill.
const FETCH_WAIT: Duration = Duration::from_millis(50);

/// How long a streaming pull request stays open, and how often an idle one hears from
/// the server (a missed heartbeat means the stream is broken and is opened again).
const STREAM_EXPIRES: Duration = Duration::from_secs(30);
const STREAM_HEARTBEAT: Duration = Duration::from_secs(5);

/// Published messages waiting for JetStream's acknowledgement at once.
const PUBLISH_WINDOW: usize = 1_000;

/// Events a message carries at most; a message's events also lie in one block of this
/// many positions in the log.
const EVENTS_PER_MESSAGE: i64 = 256;

/// A message takes no further event that would make its payload longer than this (an
/// event longer on its own travels alone, as it would without runs).
const MESSAGE_BYTES: usize = 128 * 1024;

/// Messages a subscription's reader asks the server for at once.
const PULL_MESSAGES: usize = 32;

/// Messages a subscription's reader may have received and not yet acknowledged.
const MAX_IN_FLIGHT: i64 = 20_000;

/// The header of a message carrying a run of events: how many.
const EVENTS_HEADER: &str = "Matsuri-Events";

/// Headers of a message carrying one event, as published before runs.
const SEQ_HEADER: &str = "Matsuri-Seq";
const KEY_HEADER: &str = "Matsuri-Key";
const CREATED_HEADER: &str = "Matsuri-Created-At";

impl NatsLink {
    /// Connects and makes sure the stream `<PREFIX>_EVENTS` on subjects `<prefix>.>` exists.
    /// `prefix` names the deployment (tests use one each); letters, digits, `_` and `-`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "the NATS stream prefix may hold only letters, digits, '_' and '-'"
        );
        let client = async_nats::connect(url)
            .await
            .context("connecting to NATS")?;
        let js = jetstream::new(client.clone());
        let stream = format!("{}_EVENTS", prefix.to_uppercase());
        js.get_or_create_stream(stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream")?;
        Ok(Self {
            client,
            js,
            prefix: prefix.to_owned(),
            stream,
            consumers: Mutex::new(HashMap::new()),
            publishing: Mutex::new(()),
        })
    }

    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    pub(crate) fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    /// A round trip to the server.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.client.flush().await.context("NATS did not answer")?;
        Ok(())
    }

    /// Deletes the stream and everything in it (tests clean up with it).
    pub async fn delete_stream(&self) -> anyhow::Result<()> {
        self.js
            .delete_stream(&self.stream)
            .await
            .context("deleting the stream")?;
        Ok(())
    }

    /// Claims this process's turn to publish; `None` while another worker is at it.
    pub(crate) fn publishing_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.publishing.try_lock().ok()
    }

    /// A window for publishing the log to the stream.
    pub(crate) fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            link: self,
            acks: VecDeque::with_capacity(PUBLISH_WINDOW),
            stored: None,
            subjects: HashMap::new(),
            run: None,
        }
    }

    /// The messages waiting for the subscription (a few runs of events), waiting at most
    /// `FETCH_WAIT`.
    pub(crate) async fn fetch(
        &self,
        sub: &Subscription,
    ) -> anyhow::Result<Vec<jetstream::Message>> {
        let consumer = self.consumer(sub).await?;
        // A pull request that expires, rather than a no-wait fetch: the server closes it
        // after the last message it sends for it, so none is sent to a request the client
        // has stopped reading.
        let mut batch = consumer
            .batch()
            .max_messages(PULL_MESSAGES)
            .expires(FETCH_WAIT)
            .messages()
            .await
            .context("fetching from JetStream")?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            out.push(message.map_err(|e| anyhow::anyhow!("receiving from JetStream: {e}"))?);
        }
        Ok(out)
    }

    /// The subscription's messages as a continuous stream: the next pull request goes out
    /// while earlier messages are still being handled.
    pub(crate) async fn messages(&self, sub: &Subscription) -> anyhow::Result<pull::Stream> {
        let stream = self
            .consumer(sub)
            .await?
            .stream()
            .max_messages_per_batch(PULL_MESSAGES)
            .expires(STREAM_EXPIRES)
            .heartbeat(STREAM_HEARTBEAT)
            .messages()
            .await
            .context("reading from JetStream");
        if stream.is_err() {
            self.forget(sub).await;
        }
        stream
    }

    /// Drops the cached consumer of the subscription, so the next read looks it up (or
    /// makes it) again.
    pub(crate) async fn forget(&self, sub: &Subscription) {
        self.consumers.lock().await.remove(&(sub.group, sub.topic));
    }

    /// Readies the subscription's consumer for a reader that holds the subscription's turn.
    /// Acknowledging a message acknowledges every earlier one, so no other reader may have
    /// messages outstanding: when the consumer has deliveries unacknowledged or pull
    /// requests waiting (from a reader that died or lost its turn), or was made with other
    /// settings, it is made again to start right after what was acknowledged, and what
    /// came after that is delivered again.
    pub(crate) async fn claim(&self, sub: &Subscription) -> anyhow::Result<()> {
        let mut consumer = self.consumer(sub).await?;
        let info = consumer
            .info()
            .await
            .context("reading the JetStream consumer")?;
        if info.config.ack_policy == AckPolicy::All
            && info.num_ack_pending == 0
            && info.num_waiting == 0
        {
            return Ok(());
        }
        let after = info.ack_floor.stream_sequence;
        tracing::info!(
            group = sub.group,
            after,
            unacknowledged = info.num_ack_pending,
            "making the JetStream consumer again after its last acknowledgement"
        );
        let stream = self.stream().await?;
        let name = consumer_name(sub);
        stream
            .delete_consumer(&name)
            .await
            .context("deleting a JetStream consumer")?;
        let deliver_policy = if after == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let consumer: PullConsumer = stream
            .create_consumer(self.consumer_config(sub, deliver_policy))
            .await
            .context("creating a JetStream consumer")?;
        self.consumers
            .lock()
            .await
            .insert((sub.group, sub.topic), consumer);
        Ok(())
    }

    async fn stream(&self) -> anyhow::Result<stream::Stream> {
        self.js
            .get_stream(&self.stream)
            .await
            .context("opening the stream")
    }

    async fn consumer(&self, sub: &Subscription) -> anyhow::Result<PullConsumer> {
        let mut consumers = self.consumers.lock().await;
        if let Some(consumer) = consumers.get(&(sub.group, sub.topic)) {
            return Ok(consumer.clone());
        }
        let consumer: PullConsumer = self
            .stream()
            .await?
            .get_or_create_consumer(
                &consumer_name(sub),
                self.consumer_config(sub, DeliverPolicy::All),
            )
            .await
            .context("creating a JetStream consumer")?;
        consumers.insert((sub.group, sub.topic), consumer.clone());
        Ok(consumer)
    }

    /// The subscription's durable consumer: one reader at a time (the holder of the
    /// subscription's turn), which acknowledges a batch by its last message.
    fn consumer_config(&self, sub: &Subscription, deliver_policy: DeliverPolicy) -> pull::Config {
        let name = consumer_name(sub);
        pull::Config {
            durable_name: Some(name),
            filter_subject: self.subject(sub.topic),
            deliver_policy,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_millis(u64::try_from(sub.lease_ms()).unwrap_or(60_000)),
            max_deliver: sub.max_attempts + 1,
            max_ack_pending: MAX_IN_FLIGHT,
            ..Default::default()
        }
    }
}

fn consumer_name(sub: &Subscription) -> String {
    format!("{}__{}", sub.group, sub.topic.replace('.', "_"))
}

/// Events on their way into the stream: gathered into runs, sent in log order, up to
/// `PUBLISH_WINDOW` messages waiting for JetStream's acknowledgement at once, which are
/// awaited in the same order.
pub(crate) struct Outgoing<'a> {
    link: &'a NatsLink,
    acks: VecDeque<(i64, jetstream::context::PublishAckFuture)>,
    /// The last position in the log that JetStream has stored, with all before it.
    stored: Option<i64>,
    /// Each topic's subject, made once.
    subjects: HashMap<String, async_nats::Subject>,
    run: Option<Run>,
}

impl Outgoing<'_> {
    /// Adds the next event of the log to the run being gathered, first sending that run
    /// when the event cannot join it.
    pub(crate) async fn add(&mut self, event: Outbound) -> anyhow::Result<()> {
        if !self.run.as_ref().is_some_and(|run| run.takes(&event)) {
            self.flush().await?;
        }
        self.run.get_or_insert_with(|| Run::new(&event)).push(event)
    }

    /// Sends the run gathered so far, first waiting for the oldest acknowledgement when
    /// the window is full.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        if self.acks.len() == PUBLISH_WINDOW {
            self.settle_one().await?;
        }
        let subject = match self.subjects.get(&run.topic) {
            Some(subject) => subject.clone(),
            None => {
                let subject = async_nats::Subject::from(self.link.subject(&run.topic));
                self.subjects.insert(run.topic.clone(), subject.clone());
                subject
            }
        };
        let last = run.last.0;
        let (headers, body) = run.seal();
        let ack = self
            .link
            .js
            .publish_with_headers(subject, headers, body.into())
            .await
            .context("publishing to JetStream")?;
        self.acks.push_back((last, ack));
        Ok(())
    }

    /// Sends what is gathered and waits until JetStream has stored everything sent.
    pub(crate) async fn settle(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        while !self.acks.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    async fn settle_one(&mut self) -> anyhow::Result<()> {
        if let Some((seq, ack)) = self.acks.pop_front() {
            ack.await.context("JetStream did not store an event")?;
            self.stored = Some(seq);
        }
        Ok(())
    }

    /// The last position stored since this was last asked, if it moved.
    pub(crate) fn take_stored(&mut self) -> Option<i64> {
        self.stored.take()
    }
}
