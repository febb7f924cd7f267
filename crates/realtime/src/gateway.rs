//! `GET /api/v1/ws`: the upgrade (authenticated first) and one task per socket that reads
//! client frames, writes what the hub queues for it, pings, and closes a socket that is
//! silent too long (after `idle_timeout_seconds`), sends a frame over 64 KiB (1009) or
//! falls behind its queue (1013).
//!
//! Buffers are sized for many idle sockets: a small read buffer that grows only for a
//! large frame, writes sent at once rather than gathered, a bounded write buffer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

use matsuri_core::ApiError;
use matsuri_core::auth::{AuthUser, Identity, SESSION_COOKIE, cookie};

use crate::Realtime;
use crate::frame::{Frame, FrameError, valid_topic};

/// Frames over this close the socket with 1009 (`api.md`, "Realtime").
pub const MAX_FRAME: usize = 64 * 1024;
/// What a socket reads into before a frame needs more.
const READ_BUFFER: usize = 1024;
/// Topics one socket may follow.
const MAX_TOPICS: usize = 32;

const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_TRY_LATER: u16 = 1013;
const CLOSE_GOING_AWAY: u16 = 1001;

/// Client frames of some types, answered by a domain (chat takes `send`, `delivered`,
/// `read` and `resume`).
#[async_trait::async_trait]
pub trait FrameHandler: Send + Sync + 'static {
    /// The `type`s it takes.
    fn types(&self) -> &'static [&'static str];

    /// Answers one frame from `who` on the socket `origin` (`<node>#<socket>`: a frame
    /// made with [`Frame::except`]`(origin)` skips this socket); what it sends through
    /// `out` reaches this socket in order. An error becomes an error frame and the socket
    /// stays open.
    async fn handle(
        &self,
        who: &Identity,
        kind: &str,
        frame: serde_json::Value,
        origin: &str,
        out: &mut dyn Replies,
    ) -> Result<(), FrameError>;
}

/// Where a handler's answers go: straight to the socket, in order.
#[async_trait::async_trait]
pub trait Replies: Send {
    async fn send(&mut self, frame: Frame) -> anyhow::Result<()>;
}

struct Gateway {
    realtime: Arc<Realtime>,
    handlers: HashMap<&'static str, Arc<dyn FrameHandler>>,
}

pub(crate) fn routes(realtime: Arc<Realtime>, handlers: &[Arc<dyn FrameHandler>]) -> OpenApiRouter {
    let handlers = handlers
        .iter()
        .flat_map(|h| h.types().iter().map(move |t| (*t, h.clone())))
        .collect();
    let gateway = Arc::new(Gateway { realtime, handlers });
    OpenApiRouter::new()
        .route("/ws", axum::routing::get(connect))
        .with_state(gateway)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Who opens the socket: the bearer token (header or `?token=`), or a browser's session
/// cookie from a page of this origin (a cross-site page could otherwise open a socket
/// with the visitor's cookie).
fn identify(
    gw: &Gateway,
    headers: &HeaderMap,
    token: Option<&str>,
    auth: Result<AuthUser, ApiError>,
) -> Result<Identity, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return auth.map(|AuthUser(who)| who);
    }
    if let Some(token) = token {
        return gw
            .realtime
            .keys
            .verify(token)
            .map_err(|e| ApiError::unauthorized(e.to_string()));
    }
    let who = auth.map(|AuthUser(who)| who)?;
    if cookie(headers, SESSION_COOKIE).is_some() && !same_origin(headers) {
        return Err(ApiError::forbidden(
            "a socket opened with the session cookie must come from a page of this site",
        ));
    }
    Ok(who)
}

fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        _ => false,
    }
}

async fn connect(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    auth: Result<AuthUser, ApiError>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let who = match identify(&gw, &headers, query.token.as_deref(), auth) {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    let Ok(upgrade) = upgrade else {
        return ApiError::invalid_request(
            "this endpoint speaks WebSocket only: send an upgrade request",
        )
        .into_response();
    };
    if gw.realtime.hub.count() >= gw.realtime.settings.max_connections {
        return ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node holds as many sockets as it may; try again shortly",
        )
        .with_retry_after(5)
        .into_response();
    }
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_FRAME * 4)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("ws", user_id = %who.user_id.as_str(), node = %gw.realtime.node);
            serve(gw, who, socket).instrument(span)
        })
}

/// The last few frame keys a socket was sent, so a frame sent twice reaches it once.
/// Allocated on the first keyed frame: idle sockets carry none.
#[derive(Default)]
struct Recent {
    keys: Option<Box<[u128; 64]>>,
    next: usize,
}

impl Recent {
    /// True when `key` was sent already; otherwise records it.
    fn seen(&mut self, key: u128) -> bool {
        let keys = self.keys.get_or_insert_with(|| Box::new([0; 64]));
        if key != 0 && keys.contains(&key) {
            return true;
        }
        keys[self.next] = key;
        self.next = (self.next + 1) % keys.len();
        false
    }
}

/// A socket as a handler writes to it.
struct Socket<'a> {
    ws: &'a mut WebSocket,
    recent: &'a mut Recent,
    /// Cancelled when a write is not taken within `patience`: the peer fell behind.
    lagging: &'a CancellationToken,
    patience: Duration,
}

impl Socket<'_> {
    async fn write(&mut self, frame: &Frame) -> anyhow::Result<()> {
        if let Some(key) = frame.key() {
            let seen = self.recent.seen(key);
            if seen && !frame.only_marks() {
                return Ok(());
            }
        }
        let sent = tokio::time::timeout(
            self.patience,
            self.ws.send(Message::Text(frame.text().clone())),
        )
        .await;
        let Ok(sent) = sent else {
            self.lagging.cancel();
            anyhow::bail!("the peer did not take a frame in time");
        };
        sent?;
        metrics::counter!("matsuri_ws_frames_sent_total").increment(1);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Replies for Socket<'_> {
    async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        self.write(&frame).await
    }
}

/// Why a socket ended.
enum End {
    Closed,
    Idle,
    TooBig,
    Lagging,
    Stopping,
    Broken,
}

async fn serve(gw: Arc<Gateway>, who: Identity, mut ws: WebSocket) {
    let rt = &gw.realtime;
    let user = who.user_id.as_str().to_owned();
    let mut joined = rt.hub.join(&user, rt.settings.send_queue);
    if joined.first {
        let channel = format!("u:{user}");
        let registered = tokio::try_join!(
            rt.pubsub.subscribe(&channel),
            rt.presence.stamp(std::slice::from_ref(&user))
        );
        if let Err(e) = registered {
            tracing::warn!(error = format!("{e:#}"), "registering a socket failed");
        }
    }
    metrics::gauge!("matsuri_ws_connections").increment(1.0);
    let mut topics: Vec<String> = Vec::new();
    let mut recent = Recent::default();
    let idle = Duration::from_secs(rt.settings.idle_timeout_seconds.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(
        rt.settings.ping_interval_seconds.max(1),
    ));
    ping.tick().await;
    let patience = Duration::from_millis(rt.settings.write_timeout_ms.max(1));
    let mut heard = Instant::now();
    let end = loop {
        tokio::select! {
            biased;
            () = rt.stopping.cancelled() => break End::Stopping,
            () = joined.lagging.cancelled() => break End::Lagging,
            incoming = ws.recv() => match incoming {
                None | Some(Ok(Message::Close(_))) => break End::Closed,
                Some(Err(e)) => break if too_big(&e) { End::TooBig } else { End::Broken },
                Some(Ok(message)) => {
                    heard = Instant::now();
                    metrics::counter!("matsuri_ws_frames_received_total").increment(1);
                    let Message::Text(text) = message else {
                        if let Message::Binary(_) = message {
                            let refusal = Frame::error("invalid_frame", "frames are JSON text", None);
                            if (Socket { ws: &mut ws, recent: &mut recent, lagging: &joined.lagging, patience }).write(&refusal).await.is_err() {
                                break End::Broken;
                            }
                        }
                        continue;
                    };
                    let mut socket = Socket { ws: &mut ws, recent: &mut recent, lagging: &joined.lagging, patience };
                    if answer(&gw, &who, joined.id, &mut topics, text.as_str(), &mut socket).await.is_err() {
                        break End::Broken;
                    }
                }
            },
            queued = joined.queue.recv() => match queued {
                Some(frame) => {
                    if (Socket { ws: &mut ws, recent: &mut recent, lagging: &joined.lagging, patience }).write(&frame).await.is_err() {
                        break End::Broken;
                    }
                }
                None => break End::Broken,
            },
            _ = ping.tick() => {
                if heard.elapsed() >= idle {
                    break End::Idle;
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break End::Broken;
                }
            }
        }
    };
    let end = match end {
        End::Broken if joined.lagging.is_cancelled() => End::Lagging,
        other => other,
    };
    let (code, reason, label) = match end {
        End::Closed => (None, "", "closed"),
        End::Broken => (None, "", "broken"),
        End::Idle => (Some(1000), "idle", "idle"),
        End::TooBig => (Some(CLOSE_TOO_BIG), "frame over 64 KiB", "too_big"),
        End::Lagging => (Some(CLOSE_TRY_LATER), "too far behind", "lagging"),
        End::Stopping => (Some(CLOSE_GOING_AWAY), "server stopping", "stopping"),
    };
    if let Some(code) = code {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.send(close)).await;
    }
    metrics::counter!("matsuri_ws_closed_total", "reason" => label).increment(1);
    metrics::gauge!("matsuri_ws_connections").decrement(1.0);
    let (last, emptied) = rt.hub.leave(&user, joined.id, &topics);
    for topic in &topics {
        if let Err(e) = rt.presence.unwatch(topic, joined.id).await {
            tracing::warn!(error = format!("{e:#}"), "leaving a topic failed");
        }
    }
    for topic in emptied {
        if let Err(e) = rt.pubsub.unsubscribe(&format!("t:{topic}")).await {
            tracing::warn!(error = format!("{e:#}"), "leaving a topic failed");
        }
    }
    if last {
        let channel = format!("u:{user}");
        let cleared = tokio::try_join!(rt.pubsub.unsubscribe(&channel), rt.presence.clear(&user));
        if let Err(e) = cleared {
            tracing::warn!(error = format!("{e:#}"), "unregistering a socket failed");
        }
    }
    tracing::debug!(reason = label, "socket closed");
}

fn too_big(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    let source = std::error::Error::source(e);
    matches!(
        source.and_then(|s| s.downcast_ref::<WsError>()),
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. }))
    )
}

/// One client frame: `ping`, `subscribe` and `unsubscribe` here, the rest by the handler
/// of its type. Err only when the socket can no longer be written.
async fn answer(
    gw: &Gateway,
    who: &Identity,
    socket_id: u64,
    topics: &mut Vec<String>,
    text: &str,
    out: &mut Socket<'_>,
) -> anyhow::Result<()> {
    let Ok(serde_json::Value::Object(frame)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return out
            .write(&Frame::error(
                "invalid_frame",
                "a frame is a JSON object with a type",
                None,
            ))
            .await;
    };
    let Some(kind) = frame
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return out
            .write(&Frame::error(
                "invalid_frame",
                "the frame has no type",
                None,
            ))
            .await;
    };
    // A refused `send` names its message, so the client knows which one to show as not sent.
    let client_msg_id = frame
        .get("client_msg_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let refusal = match kind.as_str() {
        "ping" => {
            return out
                .write(&Frame::json(&serde_json::json!({"type": "pong"}))?)
                .await;
        }
        "subscribe" | "unsubscribe" => {
            match follow(gw, who, socket_id, topics, &kind, frame.get("topic")).await {
                Ok(reply) => return out.write(&reply).await,
                Err(e) => e,
            }
        }
        other => match gw.handlers.get(other) {
            Some(handler) => {
                let frame = serde_json::Value::Object(frame);
                let origin = format!("{}#{socket_id}", gw.realtime.node);
                match handler.handle(who, other, frame, &origin, out).await {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                }
            }
            None => FrameError::invalid(format!("unknown frame type {other:?}")),
        },
    };
    let mut error = serde_json::json!({
        "type": "error",
        "code": refusal.code,
        "detail": refusal.detail,
        "in_reply_to": kind,
    });
    if let Some(id) = client_msg_id {
        error["client_msg_id"] = id.into();
    }
    out.write(&Frame::json(&error)?).await
}

/// `subscribe` / `unsubscribe`: this socket follows a topic, or stops.
async fn follow(
    gw: &Gateway,
    who: &Identity,
    socket_id: u64,
    topics: &mut Vec<String>,
    kind: &str,
    topic: Option<&serde_json::Value>,
) -> Result<Frame, FrameError> {
    let rt = &gw.realtime;
    let topic = topic
        .and_then(|t| t.as_str())
        .filter(|t| valid_topic(t))
        .ok_or_else(|| FrameError::invalid("topic must be live:<id> or event:<id>"))?
        .to_owned();
    let channel = format!("t:{topic}");
    let failed = |e: anyhow::Error| {
        tracing::warn!(error = format!("{e:#}"), "following a topic failed");
        FrameError::new("unavailable", "the topic cannot be followed right now")
    };
    if kind == "subscribe" {
        if !topics.contains(&topic) {
            if topics.len() >= MAX_TOPICS {
                return Err(FrameError::invalid(format!(
                    "a socket follows at most {MAX_TOPICS} topics"
                )));
            }
            if rt.hub.follow(who.user_id.as_str(), socket_id, &topic) {
                rt.pubsub.subscribe(&channel).await.map_err(failed)?;
            }
            topics.push(topic.clone());
            rt.presence.watch(&topic, socket_id).await.map_err(failed)?;
        }
        Frame::json(&serde_json::json!({"type": "subscribed", "topic": topic}))
            .map_err(|_| FrameError::invalid("unreadable topic"))
    } else {
        if let Some(i) = topics.iter().position(|t| *t == topic) {
            topics.swap_remove(i);
            if rt.hub.unfollow(socket_id, &topic) {
                rt.pubsub.unsubscribe(&channel).await.map_err(failed)?;
            }
            rt.presence
                .unwatch(&topic, socket_id)
                .await
                .map_err(failed)?;
        }
        Frame::json(&serde_json::json!({"type": "unsubscribed", "topic": topic}))
            .map_err(|_| FrameError::invalid("unreadable topic"))
    }
}
