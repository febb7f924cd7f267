//! The realtime gateway every live system rides on (`architecture.md`, "realtime +
//! push"): one WebSocket per client at `/api/v1/ws`, a bounded queue per socket, the
//! connection registry in `coord` (who is online, on which nodes), and the `pubsub` port
//! that carries frames for users and topics to the nodes serving them.
//!
//! Domains never see sockets. They send frames to users ([`Realtime::to_users`]) or
//! topics ([`Realtime::to_topic`]), ask who is online ([`Realtime::online`]), and take
//! the client frames of their types by registering a [`FrameHandler`].

mod frame;
mod gateway;
mod hub;
mod presence;
mod pubsub;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use matsuri_coord::SharedCoord;
use matsuri_core::config::RealtimeSettings;
use matsuri_core::{SharedClock, TokenKeys};

pub use frame::{Frame, FrameError, valid_topic};
pub use gateway::{FrameHandler, Replies};

use hub::Hub;
use presence::Presence;
use pubsub::PubSub;

/// This node's gateway.
pub struct Realtime {
    node: String,
    hub: Hub,
    pubsub: Box<dyn PubSub>,
    presence: Presence,
    settings: RealtimeSettings,
    keys: Arc<TokenKeys>,
    /// Cancelled when the node stops: every socket closes with 1001.
    stopping: CancellationToken,
}

impl Realtime {
    /// `pubsub_url`: `local://` or `redis://…`; `prefix` separates deployments sharing a
    /// Redis.
    pub async fn new(
        pubsub_url: &str,
        prefix: &str,
        coord: SharedCoord,
        clock: SharedClock,
        keys: Arc<TokenKeys>,
        settings: RealtimeSettings,
    ) -> anyhow::Result<Arc<Self>> {
        let pubsub: Box<dyn PubSub> = if pubsub_url == "local://" {
            Box::new(pubsub::Local)
        } else if pubsub_url.starts_with("redis://") || pubsub_url.starts_with("rediss://") {
            Box::new(pubsub::RedisPubSub::connect(pubsub_url, prefix).await?)
        } else {
            anyhow::bail!(
                "unsupported pubsub URL scheme (expected local:// or redis://): {}",
                pubsub_url.split(':').next().unwrap_or_default()
            )
        };
        let node = format!("node-{}", uuid::Uuid::now_v7().simple());
        let ttl = Duration::from_secs(settings.presence_ttl_seconds.max(3));
        Ok(Arc::new(Self {
            presence: Presence::new(coord, clock, node.clone(), ttl),
            node,
            hub: Hub::default(),
            pubsub,
            settings,
            keys,
            stopping: CancellationToken::new(),
        }))
    }

    /// This node's id in the connection registry.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Sends `frame` to every socket of each user, wherever it is connected.
    pub async fn to_users(&self, users: &[&str], frame: &Frame) -> anyhow::Result<()> {
        let skip = frame.skips_on(&self.node);
        for user in users {
            self.hub.to_user(user, frame, skip);
        }
        let payload = frame.encode(&self.node);
        let messages: Vec<(String, Vec<u8>)> = users
            .iter()
            .map(|user| (format!("u:{user}"), payload.clone()))
            .collect();
        self.pubsub.publish(&messages).await
    }

    /// Sends `frame` to every socket following `topic`, on every node.
    pub async fn to_topic(&self, topic: &str, frame: &Frame) -> anyhow::Result<()> {
        self.hub.to_topic(topic, frame);
        self.pubsub
            .publish(&[(format!("t:{topic}"), frame.encode(&self.node))])
            .await
    }

    /// How many sockets and streams follow `topic`, on every node.
    pub async fn followers(&self, topic: &str) -> anyhow::Result<u64> {
        self.presence.watchers(topic).await
    }

    /// Follows `topic` without a socket (a server-sent event stream): the frames sent to
    /// it arrive at the [`Listener`] until it is dropped. A listener that falls
    /// `send_queue` frames behind is told so ([`Listener::next`] ends).
    pub async fn listen(self: &Arc<Self>, topic: &str) -> anyhow::Result<Listener> {
        let joined = self.hub.listen(topic, self.settings.send_queue);
        let listener = Listener {
            rt: self.clone(),
            topic: topic.to_owned(),
            id: joined.id,
            queue: joined.queue,
            lagging: joined.lagging,
        };
        if joined.first {
            self.pubsub.subscribe(&format!("t:{topic}")).await?;
        }
        self.presence.watch(topic, joined.id).await?;
        Ok(listener)
    }

    /// For each user, whether they have a socket open on any node.
    pub async fn online(&self, users: &[&str]) -> anyhow::Result<Vec<bool>> {
        self.presence.online(users).await
    }

    /// Delivers a frame another node published to this node's sockets.
    fn receive(&self, channel: &str, payload: &[u8]) {
        let Some((origin, frame)) = Frame::decode(payload) else {
            tracing::warn!(channel, "dropped a pub/sub message that is not a frame");
            return;
        };
        if origin == self.node {
            return;
        }
        if let Some(user) = channel.strip_prefix("u:") {
            self.hub.to_user(user, &frame, frame.skips_on(&self.node));
        } else if let Some(topic) = channel.strip_prefix("t:") {
            self.hub.to_topic(topic, &frame);
        }
    }

    /// Renews this node's registry entries until `stop`.
    async fn heartbeat(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_secs((self.settings.presence_ttl_seconds / 3).max(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let users = self.hub.users();
            metrics::gauge!("matsuri_ws_users").set(users.len() as f64);
            let topics = self.hub.topics();
            let renewed = tokio::try_join!(
                self.presence.stamp(&users),
                self.presence.renew_watching(&topics)
            );
            if let Err(e) = renewed {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "renewing the connection registry failed"
                );
            }
        }
    }
}

/// A follower of one topic that is no socket; see [`Realtime::listen`].
pub struct Listener {
    rt: Arc<Realtime>,
    topic: String,
    id: u64,
    queue: tokio::sync::mpsc::Receiver<Frame>,
    lagging: CancellationToken,
}

impl Listener {
    /// The next frame, or `None` once the listener fell behind or the node stops.
    pub async fn next(&mut self) -> Option<Frame> {
        tokio::select! {
            biased;
            () = self.rt.stopping.cancelled() => None,
            () = self.lagging.cancelled() => None,
            frame = self.queue.recv() => frame,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let emptied = self.rt.hub.unfollow(self.id, &self.topic);
        let (rt, topic, id) = (self.rt.clone(), std::mem::take(&mut self.topic), self.id);
        // Dropping cannot wait: the registry and the pub/sub are told on their own.
        tokio::spawn(async move {
            let left = async {
                rt.presence.unwatch(&topic, id).await?;
                if emptied {
                    rt.pubsub.unsubscribe(&format!("t:{topic}")).await?;
                }
                anyhow::Ok(())
            };
            if let Err(e) = left.await {
                tracing::warn!(error = format!("{e:#}"), "leaving a topic failed");
            }
        });
    }
}

/// Where frames cross between nodes: the configured `realtime.pubsub_url`, else the
/// `coord` Redis when there is one, else nowhere (`local://`, one node).
pub fn pubsub_url(settings: &matsuri_core::Settings) -> String {
    match &settings.realtime.pubsub_url {
        Some(url) => url.expose().to_owned(),
        None if settings.coord_url.starts_with("redis") => settings.coord_url.clone(),
        None => "local://".to_owned(),
    }
}

/// The gateway as the server composes it: `/ws`, with the frame handlers of the domains
/// that take client frames.
pub struct RealtimeModule {
    realtime: Arc<Realtime>,
    handlers: Vec<Arc<dyn FrameHandler>>,
}

impl RealtimeModule {
    pub fn new(realtime: Arc<Realtime>, handlers: Vec<Arc<dyn FrameHandler>>) -> Self {
        Self { realtime, handlers }
    }
}

impl matsuri_module::Module for RealtimeModule {
    fn name(&self) -> &'static str {
        "realtime"
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        gateway::routes(self.realtime.clone(), &self.handlers)
    }

    fn spawn_serving(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let rt = self.realtime.clone();
        let inbox: pubsub::Inbox = {
            let rt = rt.clone();
            Arc::new(move |channel: &str, payload: &[u8]| rt.receive(channel, payload))
        };
        let listening = {
            let (rt, stop) = (rt.clone(), stop.clone());
            tokio::spawn(async move { rt.pubsub.run(inbox, stop).await })
        };
        vec![listening, tokio::spawn(rt.heartbeat(stop.clone()))]
    }

    fn draining(&self) {
        self.realtime.stopping.cancel();
        self.realtime.hub.close_all();
    }
}
