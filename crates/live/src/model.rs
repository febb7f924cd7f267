//! What the live API shows and refuses: rooms, comments, moderation settings, bans, and
//! the errors with their contract codes.

use serde::{Deserialize, Serialize};

use matsuri_core::clock::Millis;
use matsuri_core::{ApiError, FieldError, timefmt};

/// A comment's text: 1–200 characters.
pub const MAX_COMMENT: usize = 200;
/// A room's title: 1–200 characters.
pub const MAX_TITLE: usize = 200;
/// NG words one room may list.
pub const MAX_NG_WORDS: usize = 500;
/// An NG word or allowed word: 1–50 characters.
pub const MAX_WORD: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    Scheduled,
    Live,
    Ended,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomStatus::Scheduled => "scheduled",
            RoomStatus::Live => "live",
            RoomStatus::Ended => "ended",
        }
    }

    pub fn parse(text: &str) -> RoomStatus {
        match text {
            "live" => RoomStatus::Live,
            "ended" => RoomStatus::Ended,
            _ => RoomStatus::Scheduled,
        }
    }
}

/// Someone as a live room shows them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Commenter {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Room {
    #[schema(format = "uuid")]
    pub id: String,
    pub title: String,
    pub streamer: Commenter,
    pub status: RoomStatus,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub ended_at: Option<String>,
    /// Sockets and streams following the room now, on every node.
    pub viewer_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub live_id: String,
    pub user: Commenter,
    pub text: String,
    pub likes: i64,
    /// RFC 3339.
    pub created_at: String,
    /// Milliseconds from the room's start.
    pub offset_ms: i64,
}

/// A comment held for review: `{comment_id, status: "held"}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Held {
    #[schema(format = "uuid")]
    pub comment_id: String,
    /// Always `held`.
    pub status: String,
}

/// What happened to a comment that passed the rate limit.
#[derive(Debug, Clone)]
pub enum Posted {
    /// Stored and on its way to every viewer.
    Shown(Comment),
    /// Stored for a moderator to approve or reject.
    Held(Held),
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommentLikes {
    #[schema(format = "uuid")]
    pub comment_id: String,
    pub likes: i64,
}

/// A list of NG words or allowed words, as the document describes it: up to 500 lines
/// of 1 to 50 characters.
fn word_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom(
                    matsuri_core::text::LINE_FORMAT.to_owned(),
                )))
                .min_length(Some(1))
                .max_length(Some(MAX_WORD)),
        )
        .max_items(Some(MAX_NG_WORDS))
        .build()
}

/// A room's moderation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Moderation {
    /// Refused in this room (besides the deployment's own list), matched on
    /// normalised text.
    #[schema(schema_with = word_list)]
    pub ng_words: Vec<String>,
    /// Innocent words containing an NG word, allowed (「ディナーナイフ」).
    #[serde(default)]
    #[schema(schema_with = word_list)]
    pub allowed_words: Vec<String>,
    /// Comments per user and minute (moderators are exempt).
    #[schema(minimum = 1, maximum = 600)]
    #[serde(deserialize_with = "matsuri_core::extract::integer::required")]
    pub rate_limit_per_minute: i64,
    /// Seconds between two comments of one user; 0: off.
    #[schema(minimum = 0, maximum = 3600)]
    #[serde(deserialize_with = "matsuri_core::extract::integer::required")]
    pub slow_mode_seconds: i64,
    /// Whether comments may carry links.
    pub links_allowed: bool,
    /// Comments each viewer is sent per second at most; above it, a fair sample.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "matsuri_core::extract::integer::required")]
    pub display_per_second: i64,
}

impl Default for Moderation {
    fn default() -> Self {
        Self {
            ng_words: Vec::new(),
            allowed_words: Vec::new(),
            rate_limit_per_minute: 10,
            slow_mode_seconds: 0,
            links_allowed: true,
            display_per_second: 25,
        }
    }
}

impl Moderation {
    /// The settings with their words trimmed and deduplicated, or what breaks a rule.
    pub fn checked(mut self) -> Result<Moderation, LiveError> {
        let mut errors = Vec::new();
        for (field, words) in [
            ("ng_words", &mut self.ng_words),
            ("allowed_words", &mut self.allowed_words),
        ] {
            let mut clean = Vec::with_capacity(words.len());
            for word in words.iter() {
                match matsuri_core::text::line(field, word, MAX_WORD) {
                    Ok(word) if !clean.contains(&word) => clean.push(word),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        break;
                    }
                }
            }
            if clean.len() > MAX_NG_WORDS {
                errors.push(FieldError::new(
                    field,
                    format!("at most {MAX_NG_WORDS} words"),
                ));
            }
            *words = clean;
        }
        let ranges = [
            ("rate_limit_per_minute", self.rate_limit_per_minute, 1, 600),
            ("slow_mode_seconds", self.slow_mode_seconds, 0, 3_600),
            ("display_per_second", self.display_per_second, 1, 1_000),
        ];
        for (field, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                errors.push(FieldError::new(field, format!("must be {low} to {high}")));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(LiveError::Invalid(errors))
        }
    }
}

/// A ban or timeout in one room.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ban {
    #[schema(format = "uuid")]
    pub live_id: String,
    #[schema(format = "uuid")]
    pub user_id: String,
    /// RFC 3339; null: for good.
    pub until: Option<String>,
}

/// Why a comment was refused as spam (the problem's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamReason {
    NgWord,
    Repeated,
    Classifier,
}

impl SpamReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SpamReason::NgWord => "ng_word",
            SpamReason::Repeated => "repeated",
            SpamReason::Classifier => "classifier",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no such live room or comment")]
    NotFound,
    #[error("only the room's streamer or staff may do this")]
    Forbidden,
    #[error("the live is not on air")]
    NotActive,
    #[error("you are banned from this room")]
    Banned { until: Option<Millis> },
    #[error("too many comments: wait before the next one")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{detail}")]
    Spam {
        reason: SpamReason,
        detail: &'static str,
    },
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LiveError {
    fn from(e: sqlx::Error) -> Self {
        LiveError::Internal(e.into())
    }
}

impl From<LiveError> for ApiError {
    fn from(e: LiveError) -> Self {
        use axum::http::StatusCode;
        let detail = e.to_string();
        match e {
            LiveError::NotFound => ApiError::not_found(detail),
            LiveError::Forbidden => ApiError::forbidden(detail),
            LiveError::NotActive => ApiError::new(StatusCode::CONFLICT, "live_not_active", detail),
            LiveError::Banned { until } => ApiError::new(StatusCode::FORBIDDEN, "banned", detail)
                .with("until", until.map(timefmt::rfc3339)),
            LiveError::RateLimited {
                retry_after_seconds,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
                .with("retry_after", retry_after_seconds)
                .with_retry_after(retry_after_seconds),
            LiveError::Spam { reason, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "spam_detected", detail)
                    .with("reason", reason.as_str())
            }
            LiveError::Invalid(errors) => ApiError::validation(errors),
            LiveError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

/// Milliseconds as RFC 3339, for an optional time.
pub(crate) fn time(ms: Option<Millis>) -> Option<String> {
    ms.map(timefmt::rfc3339)
}
