//! The recommender's routes (`api.md`, "Recommendations"): thin handlers that parse,
//! call the service and map the result.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::{ApiError, AuthUser, FieldError, Json, Problem, Query, StaffUser};

use crate::Recommender;
use crate::serve::{Recommendations, RelatedItems, Run};

pub fn routes(recs: Arc<Recommender>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(record_activity))
        .routes(routes!(my_recommendations))
        .routes(routes!(related))
        .routes(routes!(start_run, list_runs))
        .with_state(recs)
}

/// Something a user did that the shop does not record itself (searches), or did record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewActivity {
    /// `view`, `search`, `cart_add` or `purchase`.
    #[schema(pattern = "^(view|search|cart_add|purchase)$")]
    pub kind: String,
    /// The product (needed for every kind but `search`).
    #[schema(max_length = 64)]
    pub product_id: Option<String>,
    /// What was searched for (needed for `search`).
    #[schema(max_length = 200)]
    pub query: Option<String>,
}

/// Record an activity of the caller's; written shortly after, with others.
#[utoipa::path(post, path = "/activity", tag = "recs", security(("bearer" = [])), request_body = NewActivity,
    responses((status = 202, description = "queued"),
        (status = 422, description = "validation_failed", body = Problem)))]
async fn record_activity(
    State(recs): State<Arc<Recommender>>,
    AuthUser(who): AuthUser,
    Json(body): Json<NewActivity>,
) -> Result<StatusCode, ApiError> {
    // The document's limits hold whatever the kind, even on a field the kind ignores.
    let mut errors = Vec::new();
    if body
        .query
        .as_deref()
        .is_some_and(|q| q.chars().count() > 200)
    {
        errors.push(matsuri_core::FieldError::new(
            "query",
            "at most 200 characters",
        ));
    }
    if body
        .product_id
        .as_deref()
        .is_some_and(|p| p.chars().count() > 64)
    {
        errors.push(matsuri_core::FieldError::new(
            "product_id",
            "at most 64 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    recs.record(
        who.user_id.as_str(),
        &body.kind,
        body.product_id.as_deref(),
        body.query.as_deref(),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many items (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl LimitQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n as usize),
            Some(_) => Err(ApiError::validation(vec![FieldError::new(
                "limit",
                "must be between 1 and 100",
            )])),
        }
    }
}

/// The caller's recommendations from the last run; popular items (reason `popular`) when
/// the run did not know them.
#[utoipa::path(get, path = "/recommendations/me", tag = "recs", security(("bearer" = [])), params(LimitQuery),
    responses((status = 200, body = Recommendations), (status = 422, description = "validation_failed", body = Problem)))]
async fn my_recommendations(
    State(recs): State<Arc<Recommender>>,
    AuthUser(who): AuthUser,
    Query(query): Query<LimitQuery>,
) -> Result<Json<Recommendations>, ApiError> {
    let limit = query.limit()?;
    Ok(Json(recs.for_user(who.user_id.as_str(), limit).await?))
}

/// Products bought or viewed together with this one.
#[utoipa::path(get, path = "/products/{id}/related", tag = "recs", params(("id" = String, Path), LimitQuery),
    responses((status = 200, body = RelatedItems), (status = 404, description = "product_not_found", body = Problem),
        (status = 422, description = "validation_failed", body = Problem)))]
async fn related(
    State(recs): State<Arc<Recommender>>,
    Path(id): Path<String>,
    Query(query): Query<LimitQuery>,
) -> Result<Json<RelatedItems>, ApiError> {
    let limit = query.limit()?;
    Ok(Json(recs.related(&id, limit).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunStarted {
    pub run_id: String,
}

/// Start a batch run now (staff); when one is going, its id.
#[utoipa::path(post, path = "/admin/recommendations/runs", tag = "recs", security(("bearer" = [])),
    responses((status = 202, body = RunStarted), (status = 409, description = "run_in_progress", body = Problem)))]
async fn start_run(
    State(recs): State<Arc<Recommender>>,
    _staff: StaffUser,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let run_id = recs.start_run("api").await?;
    Ok((StatusCode::ACCEPTED, Json(RunStarted { run_id })))
}

/// The latest runs with their counts, timings and offline metrics (staff).
#[utoipa::path(get, path = "/admin/recommendations/runs", tag = "recs", security(("bearer" = [])), params(LimitQuery),
    responses((status = 200, body = Vec<Run>), (status = 422, description = "validation_failed", body = Problem)))]
async fn list_runs(
    State(recs): State<Arc<Recommender>>,
    _staff: StaffUser,
    Query(query): Query<LimitQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let limit = query.limit()?;
    Ok(Json(recs.runs(limit as i64).await?))
}
