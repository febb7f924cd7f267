//! Chat over the socket: `send`, `delivered`, `read` and `resume` frames (`api.md`,
//! "Realtime"), each checked as its REST twin is.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use matsuri_core::auth::Identity;
use matsuri_realtime::{Frame, FrameError, FrameHandler, Realtime, Replies};

use crate::fanout::{announce_delivered, announce_read};
use crate::model::{ChatError, Stored};
use crate::service::ChatService;

/// Messages read per round trip while resuming.
const RESUME_PAGE: u32 = 200;

pub(crate) struct ChatFrames {
    pub(crate) chats: Arc<ChatService>,
    pub(crate) realtime: Arc<Realtime>,
}

#[derive(Deserialize)]
struct SendFrame {
    chat_id: String,
    client_msg_id: String,
    text: String,
}

#[derive(Deserialize)]
struct MarkFrame {
    chat_id: String,
    msg_id: String,
}

#[derive(Deserialize)]
struct ResumeFrame {
    after: String,
}

fn parse<T: serde::de::DeserializeOwned>(
    kind: &str,
    frame: serde_json::Value,
) -> Result<T, FrameError> {
    serde_json::from_value(frame).map_err(|e| FrameError::invalid(format!("a {kind} frame: {e}")))
}

/// A chat or message id: a UUID, or a chat that cannot be the caller's.
fn id(text: &str, missing: ChatError) -> Result<String, FrameError> {
    matsuri_core::ids::parse_uuid(text).ok_or_else(|| missing.into())
}

/// The `sent` answer; it also tells the socket it has this message, so the fan-out's
/// copy does not come back to it.
pub(crate) fn sent_frame(stored: &Stored) -> anyhow::Result<Frame> {
    let value = json!({
        "type": "sent",
        "chat_id": stored.chat_id,
        "client_msg_id": stored.client_msg_id,
        "msg_id": stored.id,
        "created_at": matsuri_core::timefmt::rfc3339(stored.created_at),
    });
    Ok(Frame::json(&value)?.marks(stored.key()))
}

#[async_trait::async_trait]
impl FrameHandler for ChatFrames {
    fn types(&self) -> &'static [&'static str] {
        &["send", "delivered", "read", "resume"]
    }

    async fn handle(
        &self,
        who: &Identity,
        kind: &str,
        frame: serde_json::Value,
        origin: &str,
        out: &mut dyn Replies,
    ) -> Result<(), FrameError> {
        let user = &who.user_id;
        let unwritable = |e: anyhow::Error| {
            tracing::debug!(
                error = format!("{e:#}"),
                "a chat answer could not be written"
            );
            FrameError::new("internal", "the answer could not be written")
        };
        match kind {
            "send" => {
                let send: SendFrame = parse(kind, frame)?;
                let (text, client_msg_id) =
                    crate::routes::check_message(&send.text, &send.client_msg_id)?;
                let chat_id = id(&send.chat_id, ChatError::ChatNotFound)?;
                let (stored, _) = self
                    .chats
                    .send(user, &chat_id, &text, &client_msg_id, Some(origin))
                    .await?;
                out.send(sent_frame(&stored).map_err(unwritable)?)
                    .await
                    .map_err(unwritable)
            }
            "delivered" | "read" => {
                let mark: MarkFrame = parse(kind, frame)?;
                let chat_id = id(&mark.chat_id, ChatError::ChatNotFound)?;
                let msg_id = id(&mark.msg_id, ChatError::MessageNotFound)?;
                if kind == "delivered" {
                    if let Some(moved) = self.chats.delivered(user, &chat_id, &msg_id).await? {
                        announce_delivered(&self.realtime, &moved).await;
                    }
                } else {
                    let (unread, moved) = self.chats.read(user, &chat_id, &msg_id).await?;
                    match moved {
                        Some(moved) => announce_read(&self.realtime, &moved, unread).await,
                        None => {
                            let count =
                                json!({"type": "unread", "chat_id": chat_id, "count": unread});
                            out.send(Frame::json(&count).map_err(unwritable)?)
                                .await
                                .map_err(unwritable)?;
                        }
                    }
                }
                Ok(())
            }
            "resume" => {
                let resume: ResumeFrame = parse(kind, frame)?;
                let mut after = uuid::Uuid::parse_str(&resume.after)
                    .map_err(|_| FrameError::invalid("after must be a message id"))?;
                let mut count = 0_u64;
                loop {
                    let page = self.chats.after(user, &after, RESUME_PAGE).await?;
                    for message in &page {
                        let frame = Frame::json(&message.frame())
                            .map_err(unwritable)?
                            .once_per(message.key());
                        out.send(frame).await.map_err(unwritable)?;
                        count += 1;
                    }
                    match page.last() {
                        Some(last) if page.len() == RESUME_PAGE as usize => {
                            after = uuid::Uuid::from_u128(last.key());
                        }
                        _ => break,
                    }
                }
                let done =
                    Frame::json(&json!({"type": "resumed", "count": count})).map_err(unwritable)?;
                out.send(done).await.map_err(unwritable)
            }
            other => Err(FrameError::invalid(format!("chat does not take {other:?}"))),
        }
    }
}
