//! The pages: each is the same frame (header, language switch, cart badge, connection
//! banner) around a view that its script fills from the API. Pages that show a user's
//! own things send a signed-out visitor to the sign-in form first.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use matsuri_core::auth::{SESSION_COOKIE, cookie};

use crate::Ui;
use crate::i18n::Lang;

/// What every page knows about the request it answers.
pub struct Page {
    pub lang: Lang,
    /// The view its script draws (`home`, `cart`, …).
    pub view: &'static str,
    pub signed_in: bool,
    /// The CSRF token of the session, for the scripts' changes; empty when signed out.
    pub csrf: String,
    /// The texts the scripts use, as JSON safe inside a `<script type="application/json">`.
    pub texts: String,
}

impl Page {
    pub fn new(ui: &Ui, headers: &HeaderMap, view: &'static str) -> Self {
        let lang = Lang::of(headers);
        let session = cookie(headers, SESSION_COOKIE)
            .and_then(|token| ui.keys.verify(token).ok().map(|who| (token, who)));
        let texts = lang.script_texts().to_string().replace('<', "\\u003c");
        Page {
            lang,
            view,
            signed_in: session.is_some(),
            csrf: session
                .map(|(token, _)| ui.keys.csrf_token(token))
                .unwrap_or_default(),
            texts,
        }
    }

    pub fn t(&self, key: &str) -> &'static str {
        self.lang.text(key)
    }

    /// The path of the language switch's target.
    pub fn other_lang(&self) -> &'static str {
        self.lang.other().code()
    }
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage {
    page: Page,
    /// The product id or order number the view is about, if any.
    subject: String,
}

/// Renders a template as a page that is never cached (it shows who is signed in).
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut res = Html(html).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn shop_page(ui: &Ui, headers: &HeaderMap, view: &'static str, subject: String) -> Response {
    render(&ShopPage {
        page: Page::new(ui, headers, view),
        subject,
    })
}

/// A page for signed-in users only: the sign-in form first, then back here.
fn private_page(
    ui: &Ui,
    headers: &HeaderMap,
    view: &'static str,
    path: &str,
    subject: String,
) -> Response {
    let page = Page::new(ui, headers, view);
    if !page.signed_in {
        let next: String = path
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c))
            .collect();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    render(&ShopPage { page, subject })
}

pub async fn home(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    shop_page(&ui, &headers, "home", String::new())
}

pub async fn product(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    shop_page(&ui, &headers, "product", id)
}

pub async fn cart(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    private_page(&ui, &headers, "cart", "/cart", String::new())
}

pub async fn checkout(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    private_page(&ui, &headers, "checkout", "/checkout", String::new())
}

pub async fn orders(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    private_page(&ui, &headers, "orders", "/orders", String::new())
}

pub async fn order(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    let path = format!("/orders/{number}");
    private_page(&ui, &headers, "order", &path, number)
}
