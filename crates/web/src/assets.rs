//! The stylesheet, the ES modules and the service worker, embedded in the binary so the
//! one run command serves the whole UI with nothing installed.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// (path under `/assets/`, content type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../assets/icon.svg"),
    ),
    (
        "js/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/app.js"),
    ),
    (
        "js/shop.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/shop.js"),
    ),
    (
        "js/tickets.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/tickets.js"),
    ),
    (
        "js/staff.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/staff.js"),
    ),
    (
        "js/inventory.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/inventory.js"),
    ),
    (
        "js/recs.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/recs.js"),
    ),
    (
        "js/header.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/header.js"),
    ),
    (
        "js/realtime.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/realtime.js"),
    ),
    (
        "js/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/chat.js"),
    ),
    (
        "js/social.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/social.js"),
    ),
    (
        "js/upload.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/upload.js"),
    ),
    (
        "js/images.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/images.js"),
    ),
    (
        "js/push.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/push.js"),
    ),
    (
        "js/live.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/live.js"),
    ),
    (
        "js/live-rooms.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/live-rooms.js"),
    ),
    (
        "js/live-room.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/live-room.js"),
    ),
    (
        "js/live-archive.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/live-archive.js"),
    ),
    (
        "js/live-moderation.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/js/live-moderation.js"),
    ),
];

pub async fn serve(Path(path): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut res = (*body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// `/favicon.ico`, where a browser looks for the site's icon when a document names none
/// (an image variant opened on its own): the icon the pages name.
pub async fn favicon() -> Response {
    Redirect::permanent("/assets/icon.svg").into_response()
}

/// `/sw.js`: served from the root, not `/assets/`, because a service worker controls only
/// the pages under its own path; revalidated on every check so a new one is picked up.
pub async fn service_worker() -> Response {
    let mut res = include_str!("../assets/sw.js").into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
