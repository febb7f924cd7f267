//! The social HTTP routes (`api.md`, "Social"). Reading posts needs no token; with one,
//! `liked_by_me` is the caller's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::ids::UserId;
use matsuri_core::page::{Page, PageQuery};
use matsuri_core::{ApiError, AuthUser, Json, Problem, Query};

use crate::service::{LikeState, Liker, Post, SocialError, SocialService};

pub fn routes(social: Arc<SocialService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_post, feed))
        .routes(routes!(get_post, delete_post))
        .routes(routes!(like, unlike))
        .routes(routes!(likers))
        .with_state(social)
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewPost {
    #[schema(format = "text", min_length = 1, max_length = 2000)]
    pub text: String,
    /// An uploaded image.
    #[schema(format = "uuid")]
    pub image_id: Option<String>,
}

/// The caller when a token or session came with the request; a bearer token that is
/// refused is refused, a signed-out visitor reads as anyone.
fn viewer(
    headers: &HeaderMap,
    auth: Result<AuthUser, ApiError>,
) -> Result<Option<UserId>, ApiError> {
    match auth {
        Ok(AuthUser(who)) => Ok(Some(who.user_id)),
        Err(e) if headers.contains_key(header::AUTHORIZATION) => Err(e),
        Err(_) => Ok(None),
    }
}

/// A post id from the path: a UUID, or no post.
fn post_id(text: &str) -> Result<String, ApiError> {
    matsuri_core::ids::parse_uuid(text).ok_or_else(|| SocialError::NotFound.into())
}

/// Write a post.
#[utoipa::path(post, path = "/posts", tag = "social", security(("bearer" = [])), request_body = NewPost,
    responses((status = 201, body = Post), (status = 422, body = Problem)))]
async fn create_post(
    State(social): State<Arc<SocialService>>,
    AuthUser(who): AuthUser,
    Json(body): Json<NewPost>,
) -> Result<(StatusCode, Json<Post>), ApiError> {
    let post = social
        .create(&who.user_id, &body.text, body.image_id)
        .await?;
    Ok((StatusCode::CREATED, Json(post)))
}

/// The feed, newest first.
#[utoipa::path(get, path = "/posts", tag = "social", params(PageQuery),
    responses((status = 200, body = Page<Post>)))]
async fn feed(
    State(social): State<Arc<SocialService>>,
    headers: HeaderMap,
    auth: Result<AuthUser, ApiError>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Post>>, ApiError> {
    let who = viewer(&headers, auth)?;
    let limit = page.limit()?;
    // A cursor that is no post of the feed ends it.
    let cursor = match page.cursor.as_deref() {
        Some(c) => match matsuri_core::ids::parse_uuid(c) {
            Some(c) => Some(c),
            None => {
                return Ok(Json(Page {
                    items: Vec::new(),
                    next_cursor: None,
                }));
            }
        },
        None => None,
    };
    Ok(Json(
        social.feed(who.as_ref(), cursor.as_deref(), limit).await?,
    ))
}

/// One post.
#[utoipa::path(get, path = "/posts/{id}", tag = "social", params(("id" = String, Path)),
    responses((status = 200, body = Post), (status = 404, description = "not_found", body = Problem)))]
async fn get_post(
    State(social): State<Arc<SocialService>>,
    headers: HeaderMap,
    auth: Result<AuthUser, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Post>, ApiError> {
    let who = viewer(&headers, auth)?;
    Ok(Json(social.get(who.as_ref(), &post_id(&id)?).await?))
}

/// Delete one's own post, with its likes.
#[utoipa::path(delete, path = "/posts/{id}", tag = "social", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn delete_post(
    State(social): State<Arc<SocialService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    social.delete(&who.user_id, &post_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Like a post; liking again changes nothing.
#[utoipa::path(put, path = "/posts/{id}/like", tag = "social", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = LikeState), (status = 404, description = "not_found", body = Problem)))]
async fn like(
    State(social): State<Arc<SocialService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<LikeState>, ApiError> {
    Ok(Json(social.like(&who.user_id, &post_id(&id)?).await?))
}

/// Take a like back; again changes nothing.
#[utoipa::path(delete, path = "/posts/{id}/like", tag = "social", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = LikeState), (status = 404, description = "not_found", body = Problem)))]
async fn unlike(
    State(social): State<Arc<SocialService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<LikeState>, ApiError> {
    Ok(Json(social.unlike(&who.user_id, &post_id(&id)?).await?))
}

/// Who liked a post, newest first.
#[utoipa::path(get, path = "/posts/{id}/likes", tag = "social", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Liker>), (status = 404, description = "not_found", body = Problem)))]
async fn likers(
    State(social): State<Arc<SocialService>>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Liker>>, ApiError> {
    let id = post_id(&id)?;
    let limit = page.limit()?;
    let cursor = match page.cursor.as_deref() {
        Some(c) => match c
            .split_once('_')
            .and_then(|(at, user)| Some((at.parse::<i64>().ok()?, user.to_owned())))
        {
            Some(position) => Some(position),
            // A cursor that is no position of the list ends it.
            None => {
                social.likers(&id, None, 1).await?;
                return Ok(Json(Page {
                    items: Vec::new(),
                    next_cursor: None,
                }));
            }
        },
        None => None,
    };
    Ok(Json(social.likers(&id, cursor, limit).await?))
}
