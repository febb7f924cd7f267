//! Staff routes for events and dead letters (`api.md`, "Events and dead letters").

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::page::{Page, PageQuery};
use matsuri_core::{ApiError, Json, Problem, Query, StaffUser};

use crate::{BusAdmin, ConsumerStats, DeadLetter};

pub fn routes(admin: BusAdmin) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_consumers))
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter))
        .routes(routes!(delete_dead_letter))
        .with_state(admin)
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConsumerList {
    pub items: Vec<ConsumerStats>,
}

/// Per consumer group: processed, failed, dead, lag.
#[utoipa::path(get, path = "/admin/consumers", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = ConsumerList), (status = 403, body = Problem)))]
async fn list_consumers(
    State(admin): State<BusAdmin>,
    _staff: StaffUser,
) -> Result<Json<ConsumerList>, ApiError> {
    let items = admin.consumers().await.map_err(ApiError::internal)?;
    Ok(Json(ConsumerList { items }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeadLetterQuery {
    /// Only this consumer group's dead letters.
    pub group: Option<String>,
    /// How many items to return (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Dead letters, oldest first.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "events", security(("bearer" = [])), params(DeadLetterQuery),
    responses((status = 200, body = Page<DeadLetter>), (status = 403, body = Problem)))]
async fn list_dead_letters(
    State(admin): State<BusAdmin>,
    _staff: StaffUser,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Page<DeadLetter>>, ApiError> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let rows = admin
        .dead_letters(query.group.as_deref(), page.cursor.as_deref(), limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Page::from_rows(rows, limit, |d| d.id.clone())))
}

fn no_such_dead_letter() -> ApiError {
    ApiError::not_found("no such dead letter")
}

/// Send a dead letter back to its group's queue.
#[utoipa::path(post, path = "/admin/dead-letters/{id}/retry", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, description = "queued again"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn retry_dead_letter(
    State(admin): State<BusAdmin>,
    _staff: StaffUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if admin.retry(&id).await.map_err(ApiError::internal)? {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(no_such_dead_letter())
    }
}

/// Delete a dead letter.
#[utoipa::path(delete, path = "/admin/dead-letters/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_dead_letter(
    State(admin): State<BusAdmin>,
    _staff: StaffUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if admin.delete(&id).await.map_err(ApiError::internal)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such_dead_letter())
    }
}
