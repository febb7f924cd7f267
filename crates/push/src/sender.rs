//! Sending Web Push: the bus consumer of queued pushes. Each event is one message to one
//! subscription, so a retry never sends again to a browser that already got it. The
//! message is encrypted for the subscription (RFC 8291) and carries a VAPID token for the
//! push service's origin (RFC 8292). A push service's answer decides what happens next:
//! 2xx delivered; 404 or 410 the subscription is gone and removed; 429, 5xx or no answer
//! is a failure the bus retries with its backoff; any other answer is logged and dropped.
//!
//! Logs name the push service's host only: the rest of an endpoint is a capability.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use matsuri_bus::{Consumer, Event, Subscription};

use crate::endpoint::{decode_auth_secret, decode_p256dh};
use crate::{Notice, NotificationKind, PushService, Urgency, crypto};

/// The topic of queued pushes: one event per message and subscription.
pub const QUEUED_TOPIC: &str = "push.queued";
/// The consumer group that sends them.
pub const GROUP: &str = "push";

/// The longest title and body a push shows, in characters.
const TITLE_CHARS: usize = 100;
const BODY_CHARS: usize = 200;
/// A click target longer than this is left out, so that a message always fits its record.
const URL_BYTES: usize = 1_024;

/// A push waiting to be sent, as the bus carries it. The subscription's endpoint and keys
/// are read when it is sent, so the log holds no capability and a re-registered
/// subscription's new keys are used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueuedPush {
    subscription_id: String,
    notification_id: String,
    kind: NotificationKind,
    title: String,
    body: String,
    url: Option<String>,
    urgency: Urgency,
}

impl QueuedPush {
    pub(crate) fn new(subscription_id: &str, notification_id: &str, notice: &Notice) -> Self {
        Self {
            subscription_id: subscription_id.to_owned(),
            notification_id: notification_id.to_owned(),
            kind: notice.kind,
            title: shorten(&notice.actor.name, TITLE_CHARS),
            body: shorten(&notice.text, BODY_CHARS),
            url: notice.url.clone().filter(|url| url.len() <= URL_BYTES),
            urgency: notice.urgency,
        }
    }

    /// What the service worker receives: `{title, body, url, tag, kind}`. The tag is the
    /// notification's id, so a newer push of a gathered notification replaces the older.
    fn message(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&serde_json::json!({
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": self.notification_id,
            "kind": self.kind,
        }))
    }
}

/// `text` cut to at most `max` characters, an ellipsis marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// The subscription the server runs for push: [`GROUP`] on [`QUEUED_TOPIC`].
pub(crate) fn subscription(service: Arc<PushService>) -> Subscription {
    Subscription::new(QUEUED_TOPIC, GROUP, Arc::new(PushSender(service)))
}

/// The consumer that sends queued pushes.
struct PushSender(Arc<PushService>);

#[async_trait::async_trait]
impl Consumer for PushSender {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.0.send(event).await
    }
}

/// Counts a push's outcome.
fn outcome(outcome: &'static str) {
    metrics::counter!("matsuri_push_sent_total", "outcome" => outcome).increment(1);
}

impl PushService {
    /// Sends one queued push. An error means "try again later".
    async fn send(self: &Arc<Self>, event: &Event) -> anyhow::Result<()> {
        let push: QueuedPush = event.decode()?;
        let subscription: Option<(String, String, String)> =
            sqlx::query_as("SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE id = $1")
                .bind(&push.subscription_id)
                .fetch_optional(self.db.reader())
                .await?;
        let Some((endpoint, p256dh, auth)) = subscription else {
            outcome("unsubscribed");
            return Ok(());
        };
        // The rules may have tightened since the subscription was registered.
        let url = match self.policy.check_url(&endpoint) {
            Ok(url) => url,
            Err(reason) => {
                tracing::warn!(subscription_id = %push.subscription_id, reason, "a push endpoint is no longer allowed; not sending");
                outcome("refused");
                return Ok(());
            }
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let span = tracing::info_span!(
            "push.send",
            subscription_id = %push.subscription_id,
            notification_id = %push.notification_id,
            host = %host,
        );
        async move {
            let ua_public = decode_p256dh(&p256dh).map_err(anyhow::Error::msg)?;
            let auth = decode_auth_secret(&auth).map_err(anyhow::Error::msg)?;
            let message = push.message()?;
            let audience = url.origin().ascii_serialization();
            let now = self.clock.now_ms();
            // Key agreement and signing are CPU work: off the async executor.
            let service = self.clone();
            let (body, authorization) = tokio::task::spawn_blocking(move || {
                let body = crypto::encrypt(&message, &ua_public, &auth)?;
                let authorization =
                    service
                        .vapid
                        .authorization(&audience, &service.subject, now)?;
                anyhow::Ok((body, authorization))
            })
            .await??;
            let sent = self
                .http
                .post(url)
                .header("TTL", self.ttl_seconds)
                .header("Urgency", push.urgency.as_str())
                .header(header::CONTENT_ENCODING, "aes128gcm")
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::AUTHORIZATION, authorization)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) => self.settle(&push, response.status(), &host).await,
                Err(e) => {
                    outcome("failed");
                    // Without the URL: it is the subscription's capability.
                    Err(anyhow::anyhow!(
                        "sending a push to {host} failed: {}",
                        e.without_url()
                    ))
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Acts on a push service's answer.
    async fn settle(
        &self,
        push: &QueuedPush,
        status: StatusCode,
        host: &str,
    ) -> anyhow::Result<()> {
        if status.is_success() {
            outcome("delivered");
            tracing::debug!(status = status.as_u16(), "push delivered");
            return Ok(());
        }
        match status {
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                    .bind(&push.subscription_id)
                    .execute(self.db.writer())
                    .await?;
                outcome("gone");
                tracing::info!(
                    status = status.as_u16(),
                    "the push service no longer knows this subscription; removed it"
                );
                Ok(())
            }
            StatusCode::TOO_MANY_REQUESTS => {
                outcome("retried");
                anyhow::bail!("{host} answered 429: too many pushes; will retry")
            }
            s if s.is_server_error() => {
                outcome("retried");
                anyhow::bail!("{host} answered {}; will retry", s.as_u16())
            }
            s => {
                outcome("rejected");
                tracing::warn!(
                    status = s.as_u16(),
                    "the push service refused a push; dropped it"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("exactly10!", 10), "exactly10!");
        let cut = shorten(&"祭".repeat(300), BODY_CHARS);
        assert_eq!(cut.chars().count(), BODY_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn the_largest_message_fits_one_record() {
        // Every character a control one, which JSON writes as six bytes.
        let worst = "\u{1}".repeat(1_000);
        let notice = Notice {
            user_id: matsuri_core::ids::UserId::generate(),
            kind: NotificationKind::ChatMessage,
            subject_id: "chat".into(),
            actor: crate::Actor {
                id: "actor".into(),
                name: worst.clone(),
            },
            text: worst,
            url: Some(format!("/{}", "u".repeat(URL_BYTES - 1))),
            urgency: Urgency::High,
            web_push: true,
        };
        let push = QueuedPush::new("subscription", &"n".repeat(36), &notice);
        let message = push.message().unwrap();
        assert!(message.len() <= crypto::MAX_PLAINTEXT, "{}", message.len());
        assert!(push.url.is_some());
    }
}
