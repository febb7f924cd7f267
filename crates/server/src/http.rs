//! The HTTP surface: the API under `/api/v1`, the ops endpoints, the OpenAPI document and
//! its browsable docs, and the middleware every request passes through (request id,
//! tracing span, metrics, authentication, body limit, timeout, panic guard).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use matsuri_core::ApiError;
use matsuri_core::auth::authenticate;
use matsuri_live::{LiveError, LiveService};

use crate::Components;

/// Request bodies above this are refused with 413 (`api.md`, "Limits").
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The live rooms as the web pages ask about them.
struct LiveRooms(Arc<LiveService>);

#[async_trait::async_trait]
impl matsuri_web::LiveRooms for LiveRooms {
    async fn streamer_of(&self, live_id: &str) -> anyhow::Result<Option<String>> {
        match self.0.room(live_id).await {
            Ok(room) => Ok(Some(room.streamer.id)),
            Err(LiveError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "matsuri", description = "The backend for the moments when everybody comes at once."),
    modifiers(&BearerAuth),
    tags((name = "events", description = "Consumer groups, dead letters, invoices, mails"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole HTTP surface. Fails when the OpenAPI document breaks the conventions of
/// [`crate::contract`], which every test that starts a server then shows.
pub fn router(c: &Components, timeout: Duration) -> anyhow::Result<Router> {
    let mut doc = ApiDoc::openapi();
    let mut api = OpenApiRouter::new().merge(matsuri_bus::routes(c.bus_admin.clone()));
    let mut root = Router::new();
    for module in &c.modules {
        api = api.merge(module.routes());
        root = root.merge(module.root_routes());
        if let Some((name, description)) = module.tag() {
            let tag = TagBuilder::new().name(name).description(Some(description));
            doc.tags.get_or_insert_with(Vec::new).push(tag.build());
        }
    }
    let (api, openapi) = OpenApiRouter::with_openapi(doc)
        .nest("/api/v1", api)
        .split_for_parts();
    let mut openapi = serde_json::to_value(&openapi)?;
    let complaints = crate::contract::complete(&mut openapi);
    if !complaints.is_empty() {
        anyhow::bail!(
            "the OpenAPI document breaks its conventions:\n{}",
            complaints.join("\n")
        );
    }

    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(c.clone());

    let ui = matsuri_web::router(matsuri_web::Ui {
        keys: c.keys.clone(),
        accounts: c.accounts.clone(),
        live: Arc::new(LiveRooms(c.live.clone())),
        session_seconds: c.keys.ttl_seconds(),
        elsewhere: {
            let (connect, images) = c.media.browser_origins();
            matsuri_web::Elsewhere { connect, images }
        },
    });

    Ok(Router::new()
        .merge(api)
        .merge(root)
        .merge(ui)
        .merge(ops)
        .merge(SwaggerUi::new("/api/docs").external_url_unchecked("/api/v1/openapi.json", openapi))
        .route_layer(middleware::from_fn(track_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(c.keys.clone(), authenticate))
        .layer(middleware::from_fn(move |req, next| {
            limit_time(req, next, timeout)
        }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .extensions()
                                .get::<RequestId>()
                                .and_then(|id| id.header_value().to_str().ok())
                                .unwrap_or_default();
                            tracing::info_span!(
                                "http",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id,
                                user_id = tracing::field::Empty,
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal(anyhow::anyhow!("a request handler panicked"))
                        .into_response()
                })),
        ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Answers 503 `request_timeout` when a request runs longer than `limit`.
async fn limit_time(req: Request, next: Next, limit: Duration) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request took too long; it may still complete, retry with the same Idempotency-Key",
        )
        .with_retry_after(1)
        .into_response(),
    }
}

/// Counts requests and records their latency per route template and status.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}

async fn healthz() -> &'static str {
    "ok"
}

/// 200 when every configured backend answers, 503 otherwise.
async fn readyz(State(c): State<Components>) -> Response {
    let database = c.db.ping().await.map_err(anyhow::Error::from);
    let mail = c.mailer.ping().await;
    let coord = c.coord.ping().await;
    let blob = c.media.ping().await;
    let mut results = vec![
        ("database", database),
        ("mail", mail),
        ("coord", coord),
        ("blob", blob),
    ];
    if let matsuri_bus::Transport::Nats(link) = c.bus.transport() {
        results.push(("bus", link.ping().await));
    }
    let mut ready = true;
    let mut checks = serde_json::Map::new();
    for (name, result) in results {
        let state = match result {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(
                    backend = name,
                    error = format!("{e:#}"),
                    "backend not ready"
                );
                ready = false;
                "unreachable"
            }
        };
        checks.insert(name.into(), state.into());
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ready { "ready" } else { "unavailable" }, "checks": checks });
    (status, axum::Json(body)).into_response()
}

async fn metrics() -> Response {
    let Some(handle) = crate::telemetry::metrics_handle() else {
        return ApiError::internal(anyhow::anyhow!("the metrics recorder is not installed"))
            .into_response();
    };
    handle.run_upkeep();
    let mut res = handle.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
