//! Signing in, up and out from the browser, and the language switch. The forms post here
//! (they work without script); a successful sign-in sets the session cookie, `HttpOnly`
//! so no script can read the token, `SameSite=Strict` so no other site's page sends it,
//! and `Secure` when the request came over TLS.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use matsuri_accounts::{AccountError, NewUser};
use matsuri_core::auth::{SESSION_COOKIE, cookie};

use crate::Ui;
use crate::i18n::{LANG_COOKIE, Lang};
use crate::pages::{Page, render};

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Whether a form post came from a page of this site: a browser names the page's origin,
/// and another site's page (a forged sign-in, sign-up or sign-out) names its own.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin with every POST; a client without one is no cross-site page.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    origin_host.is_some() && origin_host == host
}

fn cross_site() -> Response {
    (
        StatusCode::FORBIDDEN,
        "this form may only be sent from this site",
    )
        .into_response()
}

/// Where to go after a form: a path on this site, never another host.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    next: String,
    email: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    page: Page,
    next: String,
    email: String,
    name: String,
    error: Option<&'static str>,
    field_errors: Vec<(String, String)>,
}

pub async fn login_form(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    let page = Page::new(&ui.keys, &headers, "shop", "login");
    render(&LoginPage {
        page,
        next: safe_next(next.next.as_deref()).to_owned(),
        email: String::new(),
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    if form.email.len() <= 254 && form.password.len() <= 1024 {
        match ui.accounts.login(&form.email, &form.password).await {
            Ok(session) => return signed_in(&ui, &headers, &session.token, &next),
            Err(AccountError::InvalidCredentials) => {}
            Err(e) => {
                tracing::error!(error = %e, "signing in from the web UI failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    let page = Page::new(&ui.keys, &headers, "shop", "login");
    let error = Some(page.t("login.failed"));
    let mut res = render(&LoginPage {
        page,
        next,
        email: form.email,
        error,
    });
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res
}

pub async fn register_form(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    let page = Page::new(&ui.keys, &headers, "shop", "register");
    render(&RegisterPage {
        page,
        next: safe_next(next.next.as_deref()).to_owned(),
        email: String::new(),
        name: String::new(),
        error: None,
        field_errors: Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    email: String,
    password: String,
    name: String,
    next: Option<String>,
}

pub async fn register(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    let outcome = match NewUser::parse(&form.email, &form.password, &form.name) {
        Ok(new) => ui.accounts.register(new).await,
        Err(e) => Err(e),
    };
    let page = Page::new(&ui.keys, &headers, "shop", "register");
    let (status, error, field_errors) = match outcome {
        Ok(session) => return signed_in(&ui, &headers, &session.token, &next),
        Err(AccountError::EmailTaken) => (StatusCode::CONFLICT, page.t("register.taken"), vec![]),
        Err(AccountError::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            page.t("register.invalid"),
            errors
                .into_iter()
                .map(|e| field_error(&page, &e.field, e.message))
                .collect(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "signing up from the web UI failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut res = render(&RegisterPage {
        page,
        next,
        email: form.email,
        name: form.name,
        error: Some(error),
        field_errors,
    });
    *res.status_mut() = status;
    res
}

/// A refused field in the page's language: its label and what it must be (the API's
/// English message for a field the pages do not know).
fn field_error(page: &Page, field: &str, message: String) -> (String, String) {
    let (label, rule) = match field {
        "email" => ("login.email", "register.email_rule"),
        "password" => ("login.password", "register.password_hint"),
        "name" => ("register.name", "register.name_rule"),
        _ => return (field.to_owned(), message),
    };
    (page.t(label).to_owned(), page.t(rule).to_owned())
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// Signs out: the form carries the page's CSRF token, so another site cannot sign anyone
/// out.
pub async fn logout(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(session) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/").into_response();
    };
    if !same_origin(&headers) || !ui.keys.csrf_matches(session, &form.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let cookie = session_cookie(&headers, "", 0);
    with_cookie(Redirect::to("/"), cookie)
}

pub async fn switch_language(
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(next): Query<Next>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Ja);
    // Back to the page the switch was on (the Referer of a page of this site), or `next`.
    let back = next.next.or_else(|| same_site_path(&headers));
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        lang.code(),
        secure_suffix(&headers)
    );
    with_cookie(Redirect::to(safe_next(back.as_deref())), cookie)
}

/// The path of the `Referer` when it is a page of this site.
fn same_site_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let (_, rest) = referer.split_once("://")?;
    let path = rest.strip_prefix(host)?;
    path.starts_with('/').then(|| path.to_owned())
}

fn signed_in(ui: &Ui, headers: &HeaderMap, token: &str, next: &str) -> Response {
    let cookie = session_cookie(headers, token, ui.session_seconds);
    with_cookie(Redirect::to(next), cookie)
}

fn session_cookie(headers: &HeaderMap, token: &str, max_age: u64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        secure_suffix(headers)
    )
}

/// `; Secure` when the request came over TLS (directly or through a proxy that says so).
fn secure_suffix(headers: &HeaderMap) -> &'static str {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    if forwarded.is_some_and(|p| p.eq_ignore_ascii_case("https")) {
        "; Secure"
    } else {
        ""
    }
}

fn with_cookie(redirect: Redirect, cookie: String) -> Response {
    let mut res = redirect.into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_from_other_sites_are_told_apart() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(origin) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            }
            h
        };
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080"))));
        assert!(same_origin(&headers(None)));
        assert!(!same_origin(&headers(Some("https://evil.example"))));
        assert!(!same_origin(&headers(Some("null"))));
    }

    #[test]
    fn the_language_switch_goes_back_to_pages_of_this_site_only() {
        let headers = |referer: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            h.insert(header::REFERER, HeaderValue::from_str(referer).unwrap());
            h
        };
        assert_eq!(
            same_site_path(&headers("http://127.0.0.1:8080/cart?x=1")).as_deref(),
            Some("/cart?x=1")
        );
        assert_eq!(same_site_path(&headers("https://evil.example/cart")), None);
        assert_eq!(
            same_site_path(&headers("http://127.0.0.1:8080.evil/x")),
            None
        );
    }

    #[test]
    fn only_paths_of_this_site_are_followed() {
        assert_eq!(safe_next(Some("/cart")), "/cart");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
