//! The browser UI (`api.md`, "The web UI"), served by the binary itself at `/`.
//!
//! Pages are server-rendered HTML (askama templates, checked when the crate compiles)
//! that load small ES modules from `/assets`; the modules read and change everything
//! through the public API under `/api/v1`, with the session cookie the sign-in form sets
//! (`HttpOnly`, `SameSite=Strict`; no script can read the token) and the page's CSRF
//! token. Every page answers with a strict Content-Security-Policy (no inline script),
//! `nosniff`, a `same-origin` referrer policy and `frame-ancestors 'none'`.

mod assets;
mod i18n;
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

/// What the pages need: the token keys (sessions, CSRF tokens) and the accounts (the
/// sign-in and sign-up forms).
pub struct Ui {
    pub keys: Arc<TokenKeys>,
    pub accounts: Arc<AccountService>,
    /// How long a session cookie lives (the token's lifetime).
    pub session_seconds: u64,
}

/// The pages, the sign-in forms and the assets, to be merged at the root.
pub fn router(ui: Ui) -> Router {
    let ui = Arc::new(ui);
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
        .route(
            "/staff",
            get(|| async { axum::response::Redirect::to("/staff/products") }),
        )
        .route("/staff/{view}", get(pages::staff))
        .route("/login", get(session::login_form).post(session::login))
        .route(
            "/register",
            get(session::register_form).post(session::register),
        )
        .route("/logout", post(session::logout))
        .route("/lang/{code}", get(session::switch_language))
        .route("/assets/{*path}", get(assets::serve))
        .with_state(ui)
        .layer(middleware::from_fn(secure_headers))
}

/// The policy every page answers with: scripts, styles and connections from this origin
/// only, no inline script, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn secure_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
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
