//! The chat HTTP routes (`api.md`, "Chat"): thin handlers that check, call the service
//! and announce receipts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::page::{MAX_LIMIT, Page, PageQuery};
use matsuri_core::{ApiError, AuthUser, FieldError, Json, Problem, Query};
use matsuri_realtime::Realtime;

use crate::fanout::{announce_delivered, announce_read};
use crate::model::{Chat, ChatError, MAX_CLIENT_MSG_ID, MAX_MEMBERS, MAX_TEXT, Message};
use crate::service::{ChatService, Towards};

#[derive(Clone)]
struct Chats {
    service: Arc<ChatService>,
    realtime: Arc<Realtime>,
}

pub fn routes(service: Arc<ChatService>, realtime: Arc<Realtime>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_chat, list_chats))
        .routes(routes!(get_chat))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(delivered))
        .routes(routes!(read))
        .with_state(Chats { service, realtime })
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CreateChatRequest {
    /// The other members: one makes a direct chat, more a group (at most 255 besides
    /// you).
    #[schema(value_type = Vec<matsuri_core::ids::Id>, min_items = 1, max_items = 255)]
    pub member_ids: Vec<String>,
    /// A group's title.
    #[schema(format = "line", max_length = 100)]
    pub title: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SendRequest {
    #[schema(format = "text", min_length = 1, max_length = 4000)]
    pub text: String,
    /// The client's own id for this message: sending it again returns the first.
    #[schema(min_length = 1, max_length = 64)]
    pub client_msg_id: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct MarkReadRequest {
    /// The last message read.
    #[schema(value_type = matsuri_core::ids::Id)]
    pub msg_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unread {
    pub unread: i64,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Messages before this one, newest first (with `after` too: those between, newest
    /// first).
    #[param(value_type = Option<matsuri_core::ids::Id>)]
    pub before: Option<String>,
    /// Messages after this one, oldest first.
    #[param(value_type = Option<matsuri_core::ids::Id>)]
    pub after: Option<String>,
    /// How many (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A message's text and client id, as checked for REST and the socket alike.
pub(crate) fn check_message(
    text: &str,
    client_msg_id: &str,
) -> Result<(String, String), ChatError> {
    let mut errors = Vec::new();
    let text = matsuri_core::text::text("text", text, MAX_TEXT)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    if client_msg_id.is_empty()
        || client_msg_id.chars().count() > MAX_CLIENT_MSG_ID
        || client_msg_id.chars().any(char::is_control)
    {
        errors.push(FieldError::new(
            "client_msg_id",
            format!("must be 1 to {MAX_CLIENT_MSG_ID} characters without controls"),
        ));
    }
    if errors.is_empty() {
        Ok((text, client_msg_id.to_owned()))
    } else {
        Err(ChatError::Invalid(errors))
    }
}

/// A chat id from the path: a UUID, or no chat of the caller's.
fn chat_id(text: &str) -> Result<String, ApiError> {
    matsuri_core::ids::parse_uuid(text).ok_or_else(|| ChatError::ChatNotFound.into())
}

/// Start a direct chat or a group.
#[utoipa::path(post, path = "/chats", tag = "chat", security(("bearer" = [])), request_body = CreateChatRequest,
    responses((status = 201, body = Chat), (status = 200, description = "the direct chat with that member, which exists already", body = Chat),
        (status = 422, body = Problem)))]
async fn create_chat(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Json(body): Json<CreateChatRequest>,
) -> Result<(StatusCode, Json<Chat>), ApiError> {
    let mut errors = Vec::new();
    if body.member_ids.is_empty() || body.member_ids.len() >= MAX_MEMBERS {
        errors.push(FieldError::new(
            "member_ids",
            format!("name 1 to {} other members", MAX_MEMBERS - 1),
        ));
    }
    let mut members = Vec::with_capacity(body.member_ids.len());
    for id in &body.member_ids {
        match matsuri_core::ids::parse_uuid(id) {
            Some(id) => members.push(id),
            None => {
                errors.push(FieldError::new("member_ids", "every member is a user id"));
                break;
            }
        }
    }
    let title = match body.title.as_deref() {
        Some(title) => matsuri_core::text::line("title", title, 100)
            .map_err(|e| errors.push(e))
            .ok(),
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (chat, created) = chats.service.create(&who.user_id, &members, title).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(chat)))
}

/// The caller's chats, most recent activity first.
#[utoipa::path(get, path = "/chats", tag = "chat", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Chat>)))]
async fn list_chats(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Chat>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor.as_deref();
    // A cursor that is no chat of this list ends it: an empty page.
    if cursor.is_some_and(|c| matsuri_core::ids::parse_uuid(c).is_none()) {
        return Ok(Json(Page {
            items: Vec::new(),
            next_cursor: None,
        }));
    }
    Ok(Json(
        chats
            .service
            .list(
                &who.user_id,
                limit,
                cursor.and_then(matsuri_core::ids::parse_uuid).as_deref(),
            )
            .await?,
    ))
}

/// One of the caller's chats.
#[utoipa::path(get, path = "/chats/{id}", tag = "chat", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Chat), (status = 404, description = "not_found", body = Problem)))]
async fn get_chat(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(chats.service.get(&who.user_id, &chat_id(&id)?).await?))
}

/// A page of the chat's messages: newest first, or with `after` oldest first.
#[utoipa::path(get, path = "/chats/{id}/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = Page<Message>), (status = 404, description = "not_found", body = Problem)))]
async fn list_messages(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let id = chat_id(&id)?;
    let limit = query.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let message_id = |field: &str, text: &Option<String>, errors: &mut Vec<FieldError>| {
        let parsed = text.as_deref().map(uuid::Uuid::parse_str).transpose();
        parsed.unwrap_or_else(|_| {
            errors.push(FieldError::new(field, "must be a message id"));
            None
        })
    };
    let before = message_id("before", &query.before, &mut errors);
    let after = message_id("after", &query.after, &mut errors);
    let towards = match (before, after) {
        (before, None) => Towards::Older {
            before,
            after: None,
        },
        (before, Some(after)) if before.is_some() => Towards::Older {
            before,
            after: Some(after),
        },
        (_, Some(after)) => Towards::Newer(after),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Json(
        chats
            .service
            .history(&who.user_id, &id, towards, limit)
            .await?,
    ))
}

/// Send a message; the same `client_msg_id` again answers the first message.
#[utoipa::path(post, path = "/chats/{id}/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SendRequest,
    responses((status = 201, body = Message), (status = 200, description = "the message sent before with this client_msg_id", body = Message),
        (status = 404, description = "not_found", body = Problem), (status = 422, body = Problem)))]
async fn send_message(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<SendRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let id = chat_id(&id)?;
    let (text, client_msg_id) = check_message(&body.text, &body.client_msg_id)?;
    let (stored, fresh) = chats
        .service
        .send(&who.user_id, &id, &text, &client_msg_id, None)
        .await?;
    let message = chats.service.message(&stored.chat_id, &stored.id).await?;
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)))
}

/// The caller's client has this message (and every earlier one).
#[utoipa::path(post, path = "/chats/{id}/messages/{msg_id}/delivered", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path), ("msg_id" = String, Path)),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn delivered(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Path((id, msg_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = chat_id(&id)?;
    let msg_id = matsuri_core::ids::parse_uuid(&msg_id)
        .ok_or_else(|| ApiError::from(ChatError::MessageNotFound))?;
    if let Some(moved) = chats.service.delivered(&who.user_id, &id, &msg_id).await? {
        announce_delivered(&chats.realtime, &moved).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller has read up to and including `msg_id`.
#[utoipa::path(post, path = "/chats/{id}/read", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = MarkReadRequest,
    responses((status = 200, body = Unread), (status = 404, description = "not_found", body = Problem), (status = 422, body = Problem)))]
async fn read(
    State(chats): State<Chats>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<MarkReadRequest>,
) -> Result<Json<Unread>, ApiError> {
    let id = chat_id(&id)?;
    let msg_id = matsuri_core::ids::parse_uuid(&body.msg_id).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new("msg_id", "must be a message id")])
    })?;
    let (unread, moved) = chats.service.read(&who.user_id, &id, &msg_id).await?;
    if let Some(moved) = moved {
        announce_read(&chats.realtime, &moved, unread).await;
    }
    Ok(Json(Unread { unread }))
}
