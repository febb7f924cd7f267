//! The browser UI (`api.md`, "The web UI"), served by the binary itself at `/`.
//!
//! Pages are server-rendered HTML (askama templates, checked when the crate compiles)
//! that load small ES modules from `/assets`; the modules read and change everything
//! through the public API under `/api/v1`, with the session cookie the sign-in form sets
//! (`HttpOnly`, `SameSite=Strict`; no script can read the token) and the page's CSRF
//! token. Every page answers with a strict Content-Security-Policy (no inline script),
//! `nosniff`, a `same-origin` referrer policy and `frame-ancestors 'none'`. Chat talks
//! over the API's WebSocket (the cookie authenticates it, from pages of this origin only),
//! which every page of a signed-in visitor holds, one a page, to keep the header's
//! notification bell and chat badge live, and brings a live room's comments as they are
//! written; `/sw.js`, a service worker, shows the Web Push messages of a user who is away.
//! Image uploads send the file's bytes straight to the URL the media API hands out (on
//! the embedded store, this server's signed endpoint), never through a page.

mod assets;
mod i18n;
mod live;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use matsuri_accounts::AccountService;
use matsuri_core::TokenKeys;

pub use i18n::{Lang, yen};
pub use live::LiveRooms;

/// What the pages need: the token keys (sessions, CSRF tokens), the accounts (the
/// sign-in and sign-up forms) and the live rooms (who streams one).
pub struct Ui {
    pub keys: Arc<TokenKeys>,
    pub accounts: Arc<AccountService>,
    pub live: Arc<dyn LiveRooms>,
    /// How long a session cookie lives (the token's lifetime).
    pub session_seconds: u64,
    /// Origins other than this server that pages may send to (an S3 bucket that takes
    /// uploads straight from the browser) and show images from (a CDN in front of the
    /// variants): added to the policy's `connect-src` and `img-src`.
    pub elsewhere: Elsewhere,
}

/// Origins beyond this server's own, each `scheme://host[:port]`.
#[derive(Debug, Clone, Default)]
pub struct Elsewhere {
    pub connect: Vec<String>,
    pub images: Vec<String>,
}

/// The pages, the sign-in forms, the assets and the service worker, to be merged at the
/// root.
pub fn router(ui: Ui) -> Router {
    let keys = ui.keys.clone();
    let live = live::routes(keys.clone(), ui.live.clone());
    let policy = policy(&ui.elsewhere);
    let ui = Arc::new(ui);
    let forms = Router::new()
        .route("/login", get(session::login_form).post(session::login))
        .route(
            "/register",
            get(session::register_form).post(session::register),
        )
        .route("/logout", post(session::logout))
        .route("/lang/{code}", get(session::switch_language))
        .with_state(ui);
    secured(pages(keys).merge(live).merge(forms), policy)
}

/// What needs no accounts: the pages (the token keys tell who is signed in), the assets
/// and the service worker.
fn pages(keys: Arc<TokenKeys>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/products/{id}", get(pages::product))
        .route("/cart", get(pages::cart))
        .route("/checkout", get(pages::checkout))
        .route("/orders", get(pages::orders))
        .route("/orders/{number}", get(pages::order))
        .route("/events", get(pages::events))
        .route("/events/{id}", get(pages::event))
        .route("/tickets", get(pages::my_tickets))
        .route("/chat", get(pages::chats))
        .route("/chat/{id}", get(pages::chat))
        .route("/posts", get(pages::posts))
        .route("/posts/{id}", get(pages::post))
        .route("/notifications", get(pages::notifications))
        .route("/images", get(pages::images))
        .route("/images/{id}", get(pages::image))
        .route(
            "/staff",
            get(|| async { axum::response::Redirect::to("/staff/products") }),
        )
        .route("/staff/{view}", get(pages::staff))
        .route("/assets/{*path}", get(assets::serve))
        .route("/sw.js", get(assets::service_worker))
        .route("/favicon.ico", get(assets::favicon))
        .with_state(keys)
}

/// Every answer with the page policy and its companions.
fn secured(router: Router, policy: HeaderValue) -> Router {
    router.layer(middleware::from_fn(move |req, next| {
        secure_headers(req, next, policy.clone())
    }))
}

/// The policy every page answers with: scripts, styles, workers and connections (the
/// WebSocket too) from this origin only, no inline script, never framed; connections and
/// images also from the origins `elsewhere` names, those that are origins.
fn policy(elsewhere: &Elsewhere) -> HeaderValue {
    let origins = |list: &[String]| -> String {
        list.iter()
            .filter(|o| is_origin(o))
            .map(|o| format!(" {o}"))
            .collect()
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data:{}; connect-src 'self'{}; font-src 'self'; worker-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        origins(&elsewhere.images),
        origins(&elsewhere.connect)
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// `scheme://host[:port]` over HTTP(S), nothing else that could widen a policy.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

async fn secure_headers(req: Request, next: Next, policy: HeaderValue) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use matsuri_core::auth::SESSION_COOKIE;
    use matsuri_core::ids::UserId;
    use matsuri_core::{Clock, Role, SystemClock};

    fn keys() -> Arc<TokenKeys> {
        Arc::new(TokenKeys::new(b"a secret for the page tests", 3600))
    }

    /// GET `path`, with a session of a new customer's when `session` is set.
    async fn get(keys: &Arc<TokenKeys>, path: &str, session: bool) -> Response {
        let mut req = Request::get(path).header(header::ACCEPT_LANGUAGE, "en");
        if session {
            let (token, _) = keys
                .issue(&UserId::generate(), Role::Customer, SystemClock.now_ms())
                .unwrap();
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={token}"));
        }
        secured(pages(keys.clone()), policy(&Elsewhere::default()))
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(res: Response) -> String {
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_chat_pages_are_for_signed_in_visitors() {
        let keys = keys();
        for path in ["/chat", "/chat/0190c0de-0000-7000-8000-000000000001"] {
            let res = get(&keys, path, false).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(
                res.headers()[header::LOCATION],
                format!("/login?next={path}")
            );
        }
        let res = get(&keys, "/chat", true).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="chats""#), "{html}");
        assert!(html.contains(r#"src="/assets/js/chat.js""#), "{html}");
        assert!(html.contains(r#"href="/chat" id="chat-link""#), "{html}");
        assert!(html.contains(r#"role="switch" id="notify""#), "{html}");
        let res = get(&keys, "/chat/0190c0de-0000-7000-8000-000000000001", true).await;
        let html = text(res).await;
        assert!(
            html.contains(r#"data-id="0190c0de-0000-7000-8000-000000000001""#),
            "{html}"
        );
    }

    #[tokio::test]
    async fn the_feed_and_a_post_are_for_everyone_the_compose_box_for_the_signed_in() {
        let keys = keys();
        let res = get(&keys, "/posts", false).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="posts""#), "{html}");
        assert!(html.contains(r#"src="/assets/js/social.js""#), "{html}");
        assert!(html.contains(r#"<a href="/posts">Posts</a>"#), "{html}");
        assert!(html.contains(r#"href="/login?next=/posts""#), "{html}");
        assert!(!html.contains(r#"id="post-form""#), "{html}");
        assert!(!html.contains(r#"id="bell-link""#), "{html}");

        let html = text(get(&keys, "/posts", true).await).await;
        assert!(html.contains(r#"id="post-form""#), "{html}");
        assert!(html.contains(r#"maxlength="2000""#), "{html}");

        let id = "0190c0de-0000-7000-8000-000000000002";
        let res = get(&keys, &format!("/posts/{id}"), false).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="post""#), "{html}");
        assert!(html.contains(&format!(r#"data-id="{id}""#)), "{html}");
        assert!(html.contains(r#"id="likers""#), "{html}");
    }

    #[tokio::test]
    async fn the_notifications_page_is_for_signed_in_visitors_and_the_live_bell_on_every_page() {
        let keys = keys();
        let res = get(&keys, "/notifications", false).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers()[header::LOCATION],
            "/login?next=/notifications"
        );
        let res = get(&keys, "/notifications", true).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="notifications""#), "{html}");
        assert!(html.contains(r#"id="read-all""#), "{html}");
        assert!(html.contains("Mark all as read"), "{html}");
        let live = r#"<script type="module" src="/assets/js/header.js"></script>"#;
        for path in ["/", "/events", "/posts", "/notifications", "/chat"] {
            let html = text(get(&keys, path, true).await).await;
            assert!(
                html.contains(r#"<a href="/notifications" id="bell-link">Notifications <span class="badge" id="bell-badge""#),
                "{path}: {html}"
            );
            assert!(
                html.contains(r#"id="bell-latest" role="status""#),
                "{path}: {html}"
            );
            assert!(html.contains(live), "{path}: {html}");
        }
        for path in ["/", "/posts"] {
            let html = text(get(&keys, path, false).await).await;
            assert!(!html.contains(live), "{path}: {html}");
        }
    }

    #[test]
    fn the_policy_adds_only_origins_from_elsewhere() {
        let elsewhere = Elsewhere {
            connect: vec![
                "https://bucket.s3.amazonaws.com".into(),
                "https://x.test 'unsafe-inline'".into(),
                "javascript://x".into(),
            ],
            images: vec!["https://cdn.example.test".into(), "*".into()],
        };
        let policy = policy(&elsewhere);
        let policy = policy.to_str().unwrap();
        assert!(
            policy.contains("connect-src 'self' https://bucket.s3.amazonaws.com;"),
            "{policy}"
        );
        assert!(
            policy.contains("img-src 'self' data: https://cdn.example.test;"),
            "{policy}"
        );
        assert!(
            !policy.contains("unsafe") && !policy.contains("javascript"),
            "{policy}"
        );
        let plain = super::policy(&Elsewhere::default());
        assert!(plain.to_str().unwrap().contains("connect-src 'self';"));
    }

    #[tokio::test]
    async fn the_image_pages_are_for_signed_in_visitors() {
        let keys = keys();
        let id = "0190c0de-0000-7000-8000-000000000003";
        for path in ["/images".to_owned(), format!("/images/{id}")] {
            let res = get(&keys, &path, false).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(
                res.headers()[header::LOCATION],
                format!("/login?next={path}")
            );
        }
        let res = get(&keys, "/images", true).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="images""#), "{html}");
        assert!(html.contains(r#"src="/assets/js/images.js""#), "{html}");
        assert!(
            html.contains(r#"<a href="/images">My images</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"accept="image/jpeg,image/png,image/webp""#),
            "{html}"
        );
        for id in ["dropzone", "uploads", "filters", "images", "more"] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}: {html}");
        }
        let html = text(get(&keys, &format!("/images/{id}"), true).await).await;
        assert!(html.contains(r#"data-view="image""#), "{html}");
        assert!(html.contains(&format!(r#"data-id="{id}""#)), "{html}");

        // The compose box offers an image to attach.
        let html = text(get(&keys, "/posts", true).await).await;
        assert!(html.contains(r#"id="post-image""#), "{html}");
        assert!(html.contains(r#"id="post-upload""#), "{html}");
    }

    #[tokio::test]
    async fn the_service_worker_is_served_from_the_root_as_a_script() {
        let keys = keys();
        let res = get(&keys, "/sw.js", false).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let policy = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("worker-src 'self'"), "{policy}");
        let script = text(res).await;
        assert!(script.contains("addEventListener('push'"), "{script}");
        let res = get(&keys, "/favicon.ico", false).await;
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(res.headers()[header::LOCATION], "/assets/icon.svg");
        assert!(script.contains("addEventListener('notificationclick'"));
        for asset in [
            "js/chat.js",
            "js/realtime.js",
            "js/push.js",
            "js/social.js",
            "js/header.js",
            "js/upload.js",
            "js/images.js",
        ] {
            let res = get(&keys, &format!("/assets/{asset}"), false).await;
            assert_eq!(res.status(), StatusCode::OK, "{asset}");
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "text/javascript; charset=utf-8"
            );
        }
    }
}
