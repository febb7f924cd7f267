//! `/auth/register`, `/auth/login`, `/me`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::{ApiError, AuthUser, Json, Problem};

use crate::service::{AccountService, NewUser, Session, User};

pub fn routes(service: Arc<AccountService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me))
        .with_state(service)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    #[schema(format = "email-address", max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(format = "line", max_length = 100)]
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    pub user: User,
    pub token: String,
    /// When the token expires (RFC 3339).
    pub expires_at: String,
}

impl From<Session> for SessionResponse {
    fn from(s: Session) -> Self {
        Self {
            user: s.user,
            token: s.token,
            expires_at: matsuri_core::timefmt::rfc3339(s.expires_at),
        }
    }
}

/// Create a customer account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse), (status = 409, description = "email_taken", body = Problem),
        (status = 422, body = Problem)))]
async fn register(
    State(service): State<Arc<AccountService>>,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<SessionResponse>), ApiError> {
    let new = NewUser::parse(&body.email, &body.password, &body.name)?;
    let session = service.register(new).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "users", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, description = "invalid_credentials", body = Problem)))]
async fn login(
    State(service): State<Arc<AccountService>>,
    Json(body): Json<LoginRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    if body.email.len() > 254 || body.password.len() > 1024 {
        return Err(crate::AccountError::InvalidCredentials.into());
    }
    let session = service.login(&body.email, &body.password).await?;
    Ok(Json(session.into()))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User)))]
async fn me(
    State(service): State<Arc<AccountService>>,
    AuthUser(who): AuthUser,
) -> Result<Json<User>, ApiError> {
    match service.get(&who.user_id).await {
        Ok(user) => Ok(Json(user)),
        Err(crate::AccountError::NotFound) => {
            Err(ApiError::unauthorized("the account no longer exists"))
        }
        Err(e) => Err(e.into()),
    }
}
