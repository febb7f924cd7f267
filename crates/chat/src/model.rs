//! What chat answers with (chats and messages as the contract shows them) and what can go
//! wrong, with the contract code of each failure over HTTP and on the socket.

use serde::{Deserialize, Serialize};

use matsuri_core::{ApiError, FieldError};
use matsuri_realtime::FrameError;

/// Text 1–4,000 characters (`api.md`, "Chat").
pub const MAX_TEXT: usize = 4_000;
/// A group has at most this many members, its creator included.
pub const MAX_MEMBERS: usize = 256;
/// A client message id: up to 64 characters.
pub const MAX_CLIENT_MSG_ID: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Direct => "direct",
            ChatKind::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Sorts by time: later messages of a chat have greater ids.
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub chat_id: String,
    #[schema(format = "uuid")]
    pub sender_id: String,
    pub text: String,
    pub client_msg_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// When every other member had it (RFC 3339), if they all have.
    pub delivered_at: Option<String>,
    /// When every other member had read it (RFC 3339), if they all have.
    pub read_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chat {
    #[schema(format = "uuid")]
    pub id: String,
    pub kind: ChatKind,
    pub title: Option<String>,
    pub members: Vec<Member>,
    pub last_message: Option<Message>,
    /// The caller's unread messages.
    pub unread: i64,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such chat")]
    ChatNotFound,
    #[error("no such message in this chat")]
    MessageNotFound,
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ChatError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ChatError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for ChatError {
    fn from(e: sqlx::Error) -> Self {
        ChatError::Internal(e.into())
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::ChatNotFound | ChatError::MessageNotFound => {
                ApiError::not_found(e.to_string())
            }
            ChatError::Invalid(errors) => ApiError::validation(errors),
            ChatError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<ChatError> for FrameError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::ChatNotFound | ChatError::MessageNotFound => {
                FrameError::new("not_found", e.to_string())
            }
            ChatError::Invalid(errors) => FrameError::new(
                "validation_failed",
                errors
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ChatError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "a chat frame failed");
                FrameError::new("internal", "something went wrong; try again")
            }
        }
    }
}

/// A message as the socket pushes it.
#[derive(Debug, Serialize)]
pub(crate) struct MessageFrame<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) chat_id: &'a str,
    pub(crate) msg_id: &'a str,
    pub(crate) sender_id: &'a str,
    pub(crate) text: &'a str,
    pub(crate) created_at: String,
    pub(crate) client_msg_id: &'a str,
}

/// A stored message, as the bus carries it to the fan-out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub id: String,
    pub chat_id: String,
    /// Its place in the chat: 1, 2, 3…
    pub seq: i64,
    pub sender_id: String,
    pub text: String,
    pub client_msg_id: String,
    pub created_at: i64,
    /// The socket it was sent from, which the fan-out's copy skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Stored {
    pub(crate) fn frame(&self) -> MessageFrame<'_> {
        MessageFrame {
            kind: "message",
            chat_id: &self.chat_id,
            msg_id: &self.id,
            sender_id: &self.sender_id,
            text: &self.text,
            created_at: matsuri_core::timefmt::rfc3339(self.created_at),
            client_msg_id: &self.client_msg_id,
        }
    }

    /// The key that makes a socket get it once.
    pub(crate) fn key(&self) -> u128 {
        uuid::Uuid::parse_str(&self.id).map_or(0, |u| u.as_u128())
    }
}
