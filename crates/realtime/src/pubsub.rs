//! The `pubsub` port: frames for a user or a topic, carried to the other nodes that serve
//! them. The node that publishes delivers to its own sockets directly, so `local://` (one
//! node) carries nothing; `redis://…` uses Redis pub/sub, each node subscribing to the
//! channels of the users and topics it serves, so a frame reaches only those nodes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use tokio_util::sync::CancellationToken;

/// What a node does with a message from another node: channel, payload.
pub(crate) type Inbox = Arc<dyn Fn(&str, &[u8]) + Send + Sync>;

#[async_trait::async_trait]
pub(crate) trait PubSub: Send + Sync {
    /// Sends each payload on its channel, in one round trip.
    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> anyhow::Result<()>;
    async fn subscribe(&self, channel: &str) -> anyhow::Result<()>;
    async fn unsubscribe(&self, channel: &str) -> anyhow::Result<()>;
    /// Hands every message from other nodes to `inbox` until `stop`.
    async fn run(&self, inbox: Inbox, stop: CancellationToken);
}

/// One node: nothing to carry.
pub(crate) struct Local;

#[async_trait::async_trait]
impl PubSub for Local {
    async fn publish(&self, _: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        Ok(())
    }
    async fn subscribe(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    async fn unsubscribe(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    async fn run(&self, _: Inbox, stop: CancellationToken) {
        stop.cancelled().await;
    }
}

/// Redis pub/sub: one connection publishes, one subscribes; channels are
/// `<prefix>:rt:<channel>`. After a lost connection the subscriber reconnects and
/// subscribes again to every channel this node serves.
pub(crate) struct RedisPubSub {
    client: redis::Client,
    publisher: ConnectionManager,
    sink: Mutex<Option<PubSubSink>>,
    channels: Mutex<HashSet<String>>,
    prefix: String,
}

impl RedisPubSub {
    pub(crate) async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("reading the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let publisher = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .context("connecting to Redis for pub/sub")?;
        Ok(Self {
            client,
            publisher,
            sink: Mutex::new(None),
            channels: Mutex::new(HashSet::new()),
            prefix: format!("{prefix}:rt:"),
        })
    }

    fn full(&self, channel: &str) -> String {
        format!("{}{channel}", self.prefix)
    }

    fn sink(&self) -> Option<PubSubSink> {
        self.sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes afresh to every channel of this node; returns the messages.
    async fn reconnect(&self) -> anyhow::Result<redis::aio::PubSubStream> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        // The sink first: a channel added from now on is subscribed by `subscribe`, one
        // added before is in the list read below (subscribing twice does no harm).
        *self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink.clone());
        let channels: Vec<String> = self.channels().iter().map(|c| self.full(c)).collect();
        for chunk in channels.chunks(1_000) {
            sink.subscribe(chunk).await?;
        }
        Ok(stream)
    }
}

#[async_trait::async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (channel, payload) in messages {
            pipe.cmd("PUBLISH")
                .arg(self.full(channel))
                .arg(payload.as_slice())
                .ignore();
        }
        let mut conn = self.publisher.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> anyhow::Result<()> {
        self.channels().insert(channel.to_owned());
        // Without a subscriber connection yet, `run` subscribes to it when it connects.
        if let Some(mut sink) = self.sink() {
            sink.subscribe(self.full(channel)).await?;
        }
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> anyhow::Result<()> {
        self.channels().remove(channel);
        if let Some(mut sink) = self.sink() {
            sink.unsubscribe(self.full(channel)).await?;
        }
        Ok(())
    }

    async fn run(&self, inbox: Inbox, stop: CancellationToken) {
        let mut pause = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let mut stream = match self.reconnect().await {
                Ok(stream) => {
                    pause = Duration::from_millis(100);
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "Redis pub/sub is unreachable");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    msg = stream.next() => match msg {
                        Some(msg) => {
                            let name = msg.get_channel_name();
                            if let Some(channel) = name.strip_prefix(&self.prefix) {
                                inbox(channel, msg.get_payload_bytes());
                            }
                        }
                        None => {
                            tracing::warn!("lost the Redis pub/sub connection; reconnecting");
                            break;
                        }
                    },
                }
            }
        }
    }
}
