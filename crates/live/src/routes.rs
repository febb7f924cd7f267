//! The live HTTP routes (`api.md`, "Live comments"). Rooms, the archive, the top
//! comments and the event stream are public; commenting and liking need a token;
//! moderation needs the room's streamer or staff.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::ids::UserId;
use matsuri_core::page::{MAX_LIMIT, Page, PageQuery};
use matsuri_core::{ApiError, AuthUser, FieldError, Json, Problem, Query};

use crate::archive::ArchiveQuery;
use crate::model::{Ban, Comment, CommentLikes, Held, LiveError, Moderation, Posted, Room};
use crate::moderation::{Decision, Review};
use crate::service::LiveService;

type Live = Arc<LiveService>;

pub fn routes(live: Live) -> OpenApiRouter {
    let stream = axum::Router::new()
        .route("/live/{id}/stream", axum::routing::get(stream))
        .with_state(live.clone());
    OpenApiRouter::new()
        .routes(routes!(create_room, list_rooms))
        .routes(routes!(get_room))
        .routes(routes!(start))
        .routes(routes!(end))
        .routes(routes!(post_comment, archive))
        .routes(routes!(remove_comment))
        .routes(routes!(like, unlike))
        .routes(routes!(top_comments))
        .routes(routes!(moderation, set_moderation))
        .routes(routes!(ban))
        .routes(routes!(unban))
        .routes(routes!(review_queue))
        .routes(routes!(decide))
        .with_state(live)
        .merge(OpenApiRouter::from(stream))
}

/// An id from the path: a UUID, or nothing there.
fn id(text: &str) -> Result<String, ApiError> {
    matsuri_core::ids::parse_uuid(text).ok_or_else(|| LiveError::NotFound.into())
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewRoom {
    #[schema(format = "line", min_length = 1, max_length = 200)]
    pub title: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewComment {
    #[schema(format = "line", min_length = 1, max_length = 200)]
    pub text: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewBan {
    #[schema(format = "uuid")]
    pub user_id: String,
    /// How long; none: for good.
    #[schema(minimum = 1, maximum = 31_536_000)]
    #[serde(default, deserialize_with = "matsuri_core::extract::integer::optional")]
    pub seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    pub decision: Decision,
}

/// The 10 most liked comments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopComments {
    pub items: Vec<Comment>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ArchiveParams {
    /// Comments after this one.
    #[param(value_type = Option<matsuri_core::ids::Id>)]
    pub after: Option<String>,
    /// Written this many milliseconds after the start, or later.
    #[param(minimum = 0)]
    pub from_ms: Option<i64>,
    /// Written before this many milliseconds after the start.
    #[param(minimum = 0)]
    pub to_ms: Option<i64>,
    /// How many (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Open a room (streamers and staff); it starts scheduled.
#[utoipa::path(post, path = "/live", tag = "live", security(("bearer" = [])), request_body = NewRoom,
    responses((status = 201, body = Room), (status = 403, description = "forbidden", body = Problem), (status = 422, body = Problem)))]
async fn create_room(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Json(body): Json<NewRoom>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(live.create_room(&who, &body.title).await?),
    ))
}

/// Rooms, newest first.
#[utoipa::path(get, path = "/live", tag = "live", params(PageQuery),
    responses((status = 200, body = Page<Room>)))]
async fn list_rooms(
    State(live): State<Live>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Room>>, ApiError> {
    let limit = page.limit()?;
    let cursor = match page.cursor.as_deref() {
        Some(c) => match matsuri_core::ids::parse_uuid(c) {
            Some(c) => Some(c),
            // A cursor that is no room of the list ends it.
            None => return Ok(Json(empty())),
        },
        None => None,
    };
    Ok(Json(live.rooms(cursor.as_deref(), limit).await?))
}

fn empty<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        next_cursor: None,
    }
}

/// One room, with its viewer count.
#[utoipa::path(get, path = "/live/{id}", tag = "live", params(("id" = String, Path)),
    responses((status = 200, body = Room), (status = 404, description = "not_found", body = Problem)))]
async fn get_room(
    State(live): State<Live>,
    Path(room): Path<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(live.room(&id(&room)?).await?))
}

/// Go on air (the room's streamer or staff).
#[utoipa::path(post, path = "/live/{id}/start", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Room), (status = 403, description = "forbidden", body = Problem),
        (status = 404, description = "not_found", body = Problem), (status = 409, description = "live_not_active", body = Problem)))]
async fn start(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(live.start(&who, &id(&room)?).await?))
}

/// End the live (the room's streamer or staff).
#[utoipa::path(post, path = "/live/{id}/end", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Room), (status = 403, description = "forbidden", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
async fn end(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(live.end(&who, &id(&room)?).await?))
}

/// Comment on a live room.
#[utoipa::path(post, path = "/live/{id}/comments", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = NewComment,
    responses((status = 201, body = Comment), (status = 202, description = "held for review", body = Held),
        (status = 400, description = "spam_detected", body = Problem),
        (status = 403, description = "banned", body = Problem),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "live_not_active", body = Problem),
        (status = 422, body = Problem),
        (status = 429, description = "rate_limited", body = Problem,
            headers(("Retry-After" = u64, description = "seconds until a comment is accepted again")))))]
async fn post_comment(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
    Json(body): Json<NewComment>,
) -> Result<Response, ApiError> {
    let room = id(&room)?;
    Ok(match live.post(&who, &room, &body.text).await? {
        Posted::Shown(comment) => (StatusCode::CREATED, Json(comment)).into_response(),
        Posted::Held(held) => (StatusCode::ACCEPTED, Json(held)).into_response(),
    })
}

/// The archive: shown comments, oldest first; `from_ms` / `to_ms` replay a window.
#[utoipa::path(get, path = "/live/{id}/comments", tag = "live", params(("id" = String, Path), ArchiveParams),
    responses((status = 200, body = Page<Comment>), (status = 404, description = "not_found", body = Problem), (status = 422, body = Problem)))]
async fn archive(
    State(live): State<Live>,
    Path(room): Path<String>,
    Query(params): Query<ArchiveParams>,
) -> Result<Json<Page<Comment>>, ApiError> {
    let room = id(&room)?;
    let limit = params.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    for (field, value) in [("from_ms", params.from_ms), ("to_ms", params.to_ms)] {
        if value.is_some_and(|v| v < 0) {
            errors.push(FieldError::new(field, "must be 0 or more"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let after = match params.cursor.or(params.after) {
        Some(after) => match matsuri_core::ids::parse_uuid(&after) {
            Some(after) => Some(after),
            // A position that is no comment ends the list.
            None => {
                live.room_row(&room).await?;
                return Ok(Json(empty()));
            }
        },
        None => None,
    };
    let ask = ArchiveQuery {
        after,
        from_ms: params.from_ms,
        to_ms: params.to_ms,
        limit,
    };
    Ok(Json(live.archive(&room, &ask).await?))
}

/// Remove a comment (moderators): every viewer is told.
#[utoipa::path(delete, path = "/live/{id}/comments/{comment_id}", tag = "live", security(("bearer" = [])),
    params(("id" = String, Path), ("comment_id" = String, Path)),
    responses((status = 204), (status = 403, description = "forbidden", body = Problem), (status = 404, description = "not_found", body = Problem)))]
async fn remove_comment(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path((room, comment)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    live.remove(&who, &id(&room)?, &id(&comment)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Like a comment; again changes nothing.
#[utoipa::path(put, path = "/comments/{id}/like", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CommentLikes), (status = 404, description = "not_found", body = Problem)))]
async fn like(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(comment): Path<String>,
) -> Result<Json<CommentLikes>, ApiError> {
    Ok(Json(live.like(&who.user_id, &id(&comment)?).await?))
}

/// Take a like back; again changes nothing.
#[utoipa::path(delete, path = "/comments/{id}/like", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CommentLikes), (status = 404, description = "not_found", body = Problem)))]
async fn unlike(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(comment): Path<String>,
) -> Result<Json<CommentLikes>, ApiError> {
    Ok(Json(live.unlike(&who.user_id, &id(&comment)?).await?))
}

/// The 10 most liked comments, most first.
#[utoipa::path(get, path = "/live/{id}/top-comments", tag = "live", params(("id" = String, Path)),
    responses((status = 200, body = TopComments), (status = 404, description = "not_found", body = Problem)))]
async fn top_comments(
    State(live): State<Live>,
    Path(room): Path<String>,
) -> Result<Json<TopComments>, ApiError> {
    Ok(Json(TopComments {
        items: live.top_comments(&id(&room)?).await?,
    }))
}

/// The room's moderation settings (moderators).
#[utoipa::path(get, path = "/live/{id}/moderation", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Moderation), (status = 403, description = "forbidden", body = Problem), (status = 404, description = "not_found", body = Problem)))]
async fn moderation(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
) -> Result<Json<Moderation>, ApiError> {
    Ok(Json(live.moderation(&who, &id(&room)?).await?))
}

/// Replace the room's moderation settings (moderators).
#[utoipa::path(put, path = "/live/{id}/moderation", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Moderation,
    responses((status = 200, body = Moderation), (status = 403, description = "forbidden", body = Problem),
        (status = 404, description = "not_found", body = Problem), (status = 422, body = Problem)))]
async fn set_moderation(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
    Json(body): Json<Moderation>,
) -> Result<Json<Moderation>, ApiError> {
    Ok(Json(live.set_moderation(&who, &id(&room)?, body).await?))
}

/// Ban a user from commenting, for a while or for good (moderators).
#[utoipa::path(post, path = "/live/{id}/bans", tag = "live", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = NewBan,
    responses((status = 201, body = Ban), (status = 403, description = "forbidden", body = Problem),
        (status = 404, description = "not_found", body = Problem), (status = 422, body = Problem)))]
async fn ban(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
    Json(body): Json<NewBan>,
) -> Result<(StatusCode, Json<Ban>), ApiError> {
    let room = id(&room)?;
    let mut errors = Vec::new();
    let user = UserId::parse(&body.user_id);
    if user.is_none() {
        errors.push(FieldError::new("user_id", "must be a user id"));
    }
    if body.seconds.is_some_and(|s| !(1..=31_536_000).contains(&s)) {
        errors.push(FieldError::new("seconds", "must be 1 to 31536000"));
    }
    let Some(user) = user.filter(|_| errors.is_empty()) else {
        live.moderated(&who, &room).await?;
        return Err(ApiError::validation(errors));
    };
    let seconds = body.seconds.and_then(|s| u64::try_from(s).ok());
    Ok((
        StatusCode::CREATED,
        Json(live.ban(&who, &room, &user, seconds).await?),
    ))
}

/// Lift a ban (moderators).
#[utoipa::path(delete, path = "/live/{id}/bans/{user_id}", tag = "live", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 403, description = "forbidden", body = Problem), (status = 404, description = "not_found", body = Problem)))]
async fn unban(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path((room, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    live.unban(&who, &id(&room)?, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Comments held for review, oldest first (moderators).
#[utoipa::path(get, path = "/live/{id}/review", tag = "live", security(("bearer" = [])), params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Review>), (status = 403, description = "forbidden", body = Problem), (status = 404, description = "not_found", body = Problem)))]
async fn review_queue(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path(room): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Review>>, ApiError> {
    let room = id(&room)?;
    let limit = page.limit()?;
    let cursor = match page.cursor.as_deref() {
        Some(c) => match matsuri_core::ids::parse_uuid(c) {
            Some(c) => Some(c),
            None => {
                live.moderated(&who, &room).await?;
                return Ok(Json(empty()));
            }
        },
        None => None,
    };
    Ok(Json(
        live.review_queue(&who, &room, cursor.as_deref(), limit)
            .await?,
    ))
}

/// Approve a held comment (it is shown to every viewer) or reject it (moderators).
#[utoipa::path(post, path = "/live/{id}/review/{comment_id}", tag = "live", security(("bearer" = [])),
    params(("id" = String, Path), ("comment_id" = String, Path)), request_body = ReviewDecision,
    responses((status = 200, body = Comment), (status = 403, description = "forbidden", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
async fn decide(
    State(live): State<Live>,
    AuthUser(who): AuthUser,
    Path((room, comment)): Path<(String, String)>,
    Json(body): Json<ReviewDecision>,
) -> Result<Json<Comment>, ApiError> {
    Ok(Json(
        live.decide(&who, &id(&room)?, &id(&comment)?, body.decision)
            .await?,
    ))
}

/// `GET /live/{id}/stream`: the room's frames as server-sent events, for anyone. Not in
/// the OpenAPI document: like the socket, it stays open as long as the client listens.
async fn stream(
    State(live): State<Live>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let room = id(&room)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let events = crate::sse::stream(live, &room, last).await?;
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}
