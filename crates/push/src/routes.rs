//! `/push/vapid-public-key`, `/push/subscriptions`, `/notifications` (`api.md`, "Push and
//! notifications"): thin handlers that parse, call the service and map the result.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::page::PageQuery;
use matsuri_core::{ApiError, AuthUser, Json, Problem, Query};

use crate::{NotificationPage, PushService, UnreadCount};

pub fn routes(push: Arc<PushService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
        .routes(routes!(list_notifications))
        .routes(routes!(mark_read))
        .with_state(push)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VapidKey {
    /// The VAPID application server key: the uncompressed P-256 public point, base64url
    /// without padding (`applicationServerKey` of `PushManager.subscribe`).
    pub key: String,
}

/// A browser's `PushSubscription` as its `toJSON()` gives it; other members
/// (`expirationTime`) are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionRequest {
    /// The push service's URL for this browser: `https://`, at most 2,048 characters, on
    /// a public address.
    #[schema(max_length = 2048)]
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key (65 bytes, uncompressed), base64url.
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionCreated {
    pub id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReadRequest {
    /// A notification id: it and every older one are marked read. Without it, all are.
    pub up_to: Option<String>,
}

/// The VAPID application server key browsers subscribe with.
#[utoipa::path(get, path = "/push/vapid-public-key", tag = "push", responses((status = 200, body = VapidKey)))]
async fn vapid_public_key(State(push): State<Arc<PushService>>) -> Json<VapidKey> {
    Json(VapidKey {
        key: push.public_key().to_owned(),
    })
}

/// Register the caller's browser for Web Push. The same endpoint again updates its keys
/// and answers the same id (201 again).
#[utoipa::path(post, path = "/push/subscriptions", tag = "push", security(("bearer" = [])), request_body = SubscriptionRequest,
    responses((status = 201, body = SubscriptionCreated), (status = 409, description = "too_many_subscriptions", body = Problem),
        (status = 422, body = Problem)))]
async fn subscribe(
    State(push): State<Arc<PushService>>,
    AuthUser(who): AuthUser,
    Json(body): Json<SubscriptionRequest>,
) -> Result<(StatusCode, Json<SubscriptionCreated>), ApiError> {
    let id = push
        .subscribe(
            &who.user_id,
            &body.endpoint,
            &body.keys.p256dh,
            &body.keys.auth,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(SubscriptionCreated { id })))
}

/// Remove one of the caller's push subscriptions.
#[utoipa::path(delete, path = "/push/subscriptions/{id}", tag = "push", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn unsubscribe(
    State(push): State<Arc<PushService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    push.unsubscribe(&who.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's notifications, newest first, and how many are unread.
#[utoipa::path(get, path = "/notifications", tag = "push", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = NotificationPage)))]
async fn list_notifications(
    State(push): State<Arc<PushService>>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let limit = page.limit()?;
    let page = push
        .notifications(&who.user_id, page.cursor.as_deref(), limit)
        .await?;
    Ok(Json(page))
}

/// Mark the caller's notifications read: `up_to` and every older one, or all.
#[utoipa::path(post, path = "/notifications/read", tag = "push", security(("bearer" = [])), request_body = ReadRequest,
    responses((status = 200, body = UnreadCount), (status = 404, description = "not_found", body = Problem)))]
async fn mark_read(
    State(push): State<Arc<PushService>>,
    AuthUser(who): AuthUser,
    Json(body): Json<ReadRequest>,
) -> Result<Json<UnreadCount>, ApiError> {
    let unread = push.mark_read(&who.user_id, body.up_to.as_deref()).await?;
    Ok(Json(unread))
}
