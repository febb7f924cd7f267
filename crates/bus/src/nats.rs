//! The JetStream transport: the relay publishes the log to a stream (the event id as
//! `Nats-Msg-Id`, so a republished event is dropped as a duplicate), and each
//! subscription reads through its own durable pull consumer. Retries, ordering behind a
//! failed event of the same key, and dead letters work as on the SQL backend (the parked
//! events and the dead letters live in SQL, and only failures touch them). JetStream's
//! `max_deliver` is `max_attempts + 1`: a message delivered again after a worker died
//! mid-attempt more often than that is dead on arrival, and still reaches the dead
//! letters.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::PullConsumer, consumer::pull, stream};
use futures::StreamExt;
use tokio::sync::Mutex;

use crate::Subscription;

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

/// Published events waiting for JetStream's acknowledgement at once.
const PUBLISH_WINDOW: usize = 1_024;

/// Messages a subscription may have delivered and not yet acknowledged.
const MAX_IN_FLIGHT: i64 = 20_000;

/// Header names on published events.
pub(crate) const SEQ_HEADER: &str = "Matsuri-Seq";
pub(crate) const KEY_HEADER: &str = "Matsuri-Key";
pub(crate) const CREATED_HEADER: &str = "Matsuri-Created-At";

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

    /// Publishes events in order and waits until JetStream has stored every one. Up to
    /// `PUBLISH_WINDOW` wait for their acknowledgement at once (the client allows 5,000).
    pub(crate) async fn publish(
        &self,
        events: Vec<(String, String, async_nats::HeaderMap, String)>,
    ) -> anyhow::Result<()> {
        let mut acks: std::collections::VecDeque<jetstream::context::PublishAckFuture> =
            std::collections::VecDeque::with_capacity(PUBLISH_WINDOW);
        for (id, topic, mut headers, payload) in events {
            if acks.len() == PUBLISH_WINDOW
                && let Some(ack) = acks.pop_front()
            {
                ack.await.context("JetStream did not store an event")?;
            }
            headers.insert("Nats-Msg-Id", id.as_str());
            let ack = self
                .js
                .publish_with_headers(self.subject(&topic), headers, payload.into())
                .await
                .context("publishing to JetStream")?;
            acks.push_back(ack);
        }
        for ack in acks {
            ack.await.context("JetStream did not store an event")?;
        }
        Ok(())
    }

    /// Up to `max` messages waiting for the subscription, waiting at most `FETCH_WAIT`.
    pub(crate) async fn fetch(
        &self,
        sub: &Subscription,
        max: usize,
    ) -> anyhow::Result<Vec<jetstream::Message>> {
        let consumer = self.consumer(sub).await?;
        // A pull request that expires, rather than a no-wait fetch: the server closes it
        // after the last message it sends for it, so none is sent to a request the client
        // has stopped reading.
        let mut batch = consumer
            .batch()
            .max_messages(max)
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
    pub(crate) async fn messages(
        &self,
        sub: &Subscription,
        batch: usize,
    ) -> anyhow::Result<pull::Stream> {
        let stream = self
            .consumer(sub)
            .await?
            .stream()
            .max_messages_per_batch(batch)
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

    async fn consumer(&self, sub: &Subscription) -> anyhow::Result<PullConsumer> {
        let mut consumers = self.consumers.lock().await;
        if let Some(consumer) = consumers.get(&(sub.group, sub.topic)) {
            return Ok(consumer.clone());
        }
        let name = format!("{}__{}", sub.group, sub.topic.replace('.', "_"));
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .context("opening the stream")?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.subject(sub.topic),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(
                        u64::try_from(sub.lease_ms()).unwrap_or(60_000),
                    ),
                    max_deliver: sub.max_attempts + 1,
                    // Room for several workers' batches in flight at once.
                    max_ack_pending: MAX_IN_FLIGHT,
                    ..Default::default()
                },
            )
            .await
            .context("creating a JetStream consumer")?;
        consumers.insert((sub.group, sub.topic), consumer.clone());
        Ok(consumer)
    }
}
