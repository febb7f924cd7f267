//! The media HTTP routes (`api.md`, "Media"). Uploads and images belong to their owner
//! (another user's answer 404). At the root, outside `/api/v1`: the folder's signed upload
//! endpoint and the variants, which anyone with their URL may fetch (as a CDN does).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::page::Page;
use matsuri_core::{ApiError, AuthUser, Json, Problem, Query};

use crate::model::{
    Accepted, Image, ImagePatch, ImageQuery, NewUpload, UploadTicket, VARIANT_NAMES,
};
use crate::service::MediaService;
use crate::uploads::PutRefused;

type Media = Arc<MediaService>;

pub fn routes(media: Media) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(presign))
        .routes(routes!(complete))
        .routes(routes!(list))
        .routes(routes!(get_image, update_image, delete_image))
        .with_state(media)
}

/// The routes at the root: the folder's upload endpoint and the variants.
pub fn root_routes(media: Media) -> axum::Router {
    axum::Router::new()
        .route("/uploads/{id}/original", axum::routing::put(receive))
        .route("/images/{id}/{file}", axum::routing::get(variant))
        .with_state(media)
}

/// Ask for an upload URL (15 minutes): PUT the file there with the headers given, then
/// complete the upload.
#[utoipa::path(post, path = "/uploads/presigned-url", tag = "media", security(("bearer" = [])), request_body = NewUpload,
    responses((status = 201, body = UploadTicket),
        (status = 429, description = "rate_limited", body = Problem)))]
async fn presign(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Json(body): Json<NewUpload>,
) -> Result<(StatusCode, Json<UploadTicket>), ApiError> {
    let ticket = media.presign(&who.user_id, &body).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Complete an upload: the stored file is checked (size, format by its first bytes), then
/// the image is `processing` until its variants exist.
#[utoipa::path(post, path = "/uploads/{id}/complete", tag = "media", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = Accepted),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "upload_missing", body = Problem),
        (status = 422, description = "validation_failed", body = Problem)))]
async fn complete(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let accepted = media.complete(&who.user_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The caller's images, newest first.
#[utoipa::path(get, path = "/images", tag = "media", security(("bearer" = [])), params(ImageQuery),
    responses((status = 200, body = Page<Image>)))]
async fn list(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Query(query): Query<ImageQuery>,
) -> Result<Json<Page<Image>>, ApiError> {
    Ok(Json(media.images(&who.user_id, &query).await?))
}

/// One of the caller's images.
#[utoipa::path(get, path = "/images/{id}", tag = "media", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Image), (status = 404, description = "not_found", body = Problem)))]
async fn get_image(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Image>, ApiError> {
    Ok(Json(media.image(&who.user_id, &id).await?))
}

/// Set the title or the tags of one of the caller's images.
#[utoipa::path(patch, path = "/images/{id}", tag = "media", security(("bearer" = [])), params(("id" = String, Path)), request_body = ImagePatch,
    responses((status = 200, body = Image), (status = 404, description = "not_found", body = Problem)))]
async fn update_image(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(patch): Json<ImagePatch>,
) -> Result<Json<Image>, ApiError> {
    Ok(Json(media.update(&who.user_id, &id, &patch).await?))
}

/// Delete one of the caller's images, its original and its variants.
#[utoipa::path(delete, path = "/images/{id}", tag = "media", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn delete_image(
    State(media): State<Media>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    media.delete(&who.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct Signed {
    expires: i64,
    signature: String,
}

/// `PUT /uploads/{id}/original?expires=…&signature=…`: the folder's presigned upload.
async fn receive(
    State(media): State<Media>,
    Path(id): Path<String>,
    signed: Result<axum::extract::Query<Signed>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let Ok(axum::extract::Query(signed)) = signed else {
        return Err(ApiError::forbidden("the upload URL is not signed"));
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let outcome = media
        .receive(
            &id,
            &content_type,
            signed.expires,
            &signed.signature,
            request.into_body(),
        )
        .await;
    match outcome {
        Ok(()) => Ok(StatusCode::OK),
        Err(PutRefused::NotFound) => Err(ApiError::not_found("no such upload")),
        Err(e @ (PutRefused::BadSignature | PutRefused::Expired | PutRefused::Closed)) => {
            Err(ApiError::forbidden(e.to_string()))
        }
        Err(PutRefused::TooLarge) => Err(ApiError::payload_too_large()),
        Err(PutRefused::Internal(e)) => Err(ApiError::internal(e)),
    }
}

/// The caching a variant gets: its bytes never change under its URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /images/{id}/{variant}.webp`: the bytes (or a redirect to the bucket or CDN when
/// `media.variants_redirect_url` is set), with a strong ETag, 304 on `If-None-Match`, and
/// one byte range on `Range`.
async fn variant(
    State(media): State<Media>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".webp")
        .filter(|name| VARIANT_NAMES.contains(name))
        .ok_or_else(|| ApiError::not_found("no such variant"))?;
    let servable = media
        .servable(&id, name)
        .await?
        .ok_or_else(|| ApiError::not_found("no such image or variant"))?;
    let etag = format!("\"{}\"", servable.etag);
    if let Some(base) = &media.settings.variants_redirect_url {
        let location = format!("{}/{}", base.trim_end_matches('/'), servable.key);
        return Ok(cached(
            StatusCode::FOUND,
            &etag,
            [(header::LOCATION, location)],
            Vec::new(),
        ));
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| matches_etag(given, &etag))
    {
        return Ok(cached(StatusCode::NOT_MODIFIED, &etag, [], Vec::new()));
    }
    let bytes = media
        .variants
        .get(&servable.key)
        .await?
        .ok_or_else(|| ApiError::not_found("no such image or variant"))?;
    let length = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| byte_range(r, length));
    let webp = [(header::CONTENT_TYPE, "image/webp".to_owned())];
    match range {
        Some(Some(Ok((start, end)))) => {
            let part = bytes.slice(start as usize..=end as usize).to_vec();
            let mut res = cached(StatusCode::PARTIAL_CONTENT, &etag, webp, part);
            insert(
                &mut res,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{length}"),
            );
            Ok(res)
        }
        Some(Some(Err(()))) => {
            let mut res = cached(StatusCode::RANGE_NOT_SATISFIABLE, &etag, [], Vec::new());
            insert(
                &mut res,
                header::CONTENT_RANGE,
                &format!("bytes */{length}"),
            );
            Ok(res)
        }
        // No range, or one this does not serve (several ranges): the whole variant.
        Some(None) | None => Ok(cached(StatusCode::OK, &etag, webp, bytes.to_vec())),
    }
}

/// An answer with the variant's caching headers.
fn cached<const N: usize>(
    status: StatusCode,
    etag: &str,
    extra: [(header::HeaderName, String); N],
    body: Vec<u8>,
) -> Response {
    let mut res = (status, body).into_response();
    insert(&mut res, header::CACHE_CONTROL, IMMUTABLE);
    insert(&mut res, header::ETAG, etag);
    insert(&mut res, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    insert(&mut res, header::ACCEPT_RANGES, "bytes");
    for (name, value) in extra {
        insert(&mut res, name, &value);
    }
    res
}

fn insert(res: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, value);
    }
}

/// Whether an `If-None-Match` list names `etag` (or is `*`); weak validators compare by
/// their opaque part, as the header's weak comparison does.
fn matches_etag(given: &str, etag: &str) -> bool {
    given.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// One range of `Range: bytes=…` over `length` bytes, inclusive: `Some(Ok)` to serve,
/// `Some(Err)` when it cannot be satisfied, `None` when the header is not one byte range
/// (the whole body is served then).
fn byte_range(header: &str, length: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return None,
        (true, false) => {
            let suffix: u64 = last.parse().ok()?;
            if suffix == 0 || length == 0 {
                return Some(Err(()));
            }
            (length.saturating_sub(suffix), length - 1)
        }
        (false, _) => {
            let start: u64 = first.parse().ok()?;
            let end: u64 = if last.is_empty() {
                u64::MAX
            } else {
                last.parse().ok()?
            };
            if end < start {
                return None;
            }
            if start >= length {
                return Some(Err(()));
            }
            (start, end.min(length - 1))
        }
    };
    Some(Ok(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_the_header_means_them() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-500", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None);
        assert_eq!(byte_range("bytes=9-1", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=x-1", 100), None);
    }

    #[test]
    fn etags_match_in_lists_and_weakly() {
        assert!(matches_etag("\"a\"", "\"a\""));
        assert!(matches_etag("\"b\", W/\"a\"", "\"a\""));
        assert!(matches_etag("*", "\"a\""));
        assert!(!matches_etag("\"b\"", "\"a\""));
    }
}
