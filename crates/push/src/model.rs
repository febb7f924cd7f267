//! What push is told and what it shows: a notice from another domain, and the stored
//! notifications the `notifications` routes list.

use serde::{Deserialize, Serialize};

use matsuri_core::ids::UserId;

/// What a notification is about. Stored and shown as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A chat message; the subject is the chat.
    ChatMessage,
    /// A like of a post; the subject is the post.
    PostLiked,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ChatMessage => "chat_message",
            NotificationKind::PostLiked => "post_liked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "chat_message" => Some(NotificationKind::ChatMessage),
            "post_liked" => Some(NotificationKind::PostLiked),
            _ => None,
        }
    }
}

/// How soon a push service should deliver (the `Urgency` header of RFC 8030): a phone
/// may hold back low-urgency messages to save its battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    /// For what a person waits for, such as a chat message.
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// Who caused a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The actor's user id.
    pub id: String,
    pub name: String,
}

/// News for one user, as another domain hands it to [`crate::PushService::notify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Who is notified.
    pub user_id: UserId,
    pub kind: NotificationKind,
    /// What it is about (a post id, a chat id): the unread notices of one user, kind and
    /// subject gather into one notification.
    pub subject_id: String,
    pub actor: Actor,
    /// The notification's text (the latest notice's, once gathered); a push shows the
    /// first 200 characters.
    pub text: String,
    /// Where a click on the push leads, e.g. `/chat/<id>`.
    pub url: Option<String>,
    pub urgency: Urgency,
    /// Also send a Web Push to the user's subscriptions (their user has no socket open).
    pub web_push: bool,
}

/// A stored notification, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub kind: NotificationKind,
    pub subject_id: String,
    /// The latest few actors, latest first.
    pub actors: Vec<Actor>,
    /// How many different actors gathered into it.
    pub actor_count: i64,
    /// The latest notice's text.
    pub text: String,
    pub url: Option<String>,
    pub read: bool,
    /// When its first notice came (RFC 3339).
    pub created_at: String,
    /// When its latest notice came (RFC 3339).
    pub updated_at: String,
}

/// `GET /notifications`: one page, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// All of the caller's unread notifications, not only this page's.
    pub unread_count: i64,
    pub next_cursor: Option<String>,
}

/// The caller's unread notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_they_are_written() {
        for kind in [NotificationKind::ChatMessage, NotificationKind::PostLiked] {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(NotificationKind::parse("unknown"), None);
    }

    #[test]
    fn urgency_names_follow_rfc_8030() {
        let json = serde_json::to_value(Urgency::VeryLow).unwrap_or_default();
        assert_eq!(json, Urgency::VeryLow.as_str());
        assert_eq!(Urgency::default(), Urgency::Normal);
    }
}
