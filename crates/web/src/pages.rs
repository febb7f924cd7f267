//! The pages: each is the same frame (header, language switch, cart and chat badges, the
//! notification bell, connection banner) around a view that its script fills from the API. Pages that show a
//! user's own things send a signed-out visitor to the sign-in form first. They need only
//! the token keys (who is signed in, the CSRF token), not the accounts.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use matsuri_core::auth::{SESSION_COOKIE, cookie};
use matsuri_core::{Role, TokenKeys};

use crate::i18n::Lang;

/// What every page knows about the request it answers.
pub struct Page {
    pub lang: Lang,
    /// The script of the page (`shop`, `tickets`, `staff`, `chat`, `social`, `images`,
    /// `live-room`, …; `/assets/js/<module>.js`).
    pub module: &'static str,
    /// The view its script draws (`home`, `cart`, …).
    pub view: &'static str,
    pub signed_in: bool,
    pub staff: bool,
    /// The CSRF token of the session, for the scripts' changes; empty when signed out.
    pub csrf: String,
    /// The texts the scripts use, as JSON safe inside a `<script type="application/json">`.
    pub texts: String,
}

impl Page {
    pub fn new(
        keys: &TokenKeys,
        headers: &HeaderMap,
        module: &'static str,
        view: &'static str,
    ) -> Self {
        let lang = Lang::of(headers);
        let session = cookie(headers, SESSION_COOKIE)
            .and_then(|token| keys.verify(token).ok().map(|who| (token, who)));
        let texts = lang.script_texts().to_string().replace('<', "\\u003c");
        Page {
            lang,
            module,
            view,
            signed_in: session.is_some(),
            staff: session
                .as_ref()
                .is_some_and(|(_, who)| who.role == Role::Staff),
            csrf: session
                .map(|(token, _)| keys.csrf_token(token))
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

#[derive(Template)]
#[template(path = "tickets.html")]
struct TicketsPage {
    page: Page,
    /// The event the view is about, if any.
    subject: String,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    page: Page,
    /// The chat the view is about, if any.
    subject: String,
}

#[derive(Template)]
#[template(path = "social.html")]
struct SocialPage {
    page: Page,
    /// The post the view is about, if any.
    subject: String,
}

#[derive(Template)]
#[template(path = "images.html")]
struct ImagesPage {
    page: Page,
    /// The image the view is about, if any.
    subject: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    page: Page,
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

/// Who may see a page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Everyone,
    SignedIn,
    Staff,
}

/// Why a page is not shown: the visitor must sign in first (then come back to the path),
/// or the page is for staff, or for a live room's moderators.
pub(crate) enum Refusal {
    SignIn(String),
    StaffOnly,
    ModeratorsOnly,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(next) => Redirect::to(&format!("/login?next={next}")).into_response(),
            Refusal::StaffOnly => (StatusCode::FORBIDDEN, "staff only").into_response(),
            Refusal::ModeratorsOnly => {
                (StatusCode::FORBIDDEN, "moderators of this room only").into_response()
            }
        }
    }
}

/// The page of `view` for `audience`, or why not; `uri` is where a visitor sent to sign in
/// comes back to.
pub(crate) fn gate(
    keys: &TokenKeys,
    headers: &HeaderMap,
    uri: &Uri,
    (module, view): (&'static str, &'static str),
    audience: Audience,
) -> Result<Page, Refusal> {
    let page = Page::new(keys, headers, module, view);
    if audience != Audience::Everyone && !page.signed_in {
        let next = uri
            .path()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c))
            .collect();
        return Err(Refusal::SignIn(next));
    }
    if audience == Audience::Staff && !page.staff {
        return Err(Refusal::StaffOnly);
    }
    Ok(page)
}

/// A shop, tickets, chat, social or images page about `subject` (a product, an order, an
/// event, a chat, a post, an image; or nothing).
fn page_of(
    keys: &TokenKeys,
    headers: &HeaderMap,
    uri: &Uri,
    (module, view): (&'static str, &'static str),
    audience: Audience,
    subject: String,
) -> Response {
    match gate(keys, headers, uri, (module, view), audience) {
        Ok(page) if module == "tickets" => render(&TicketsPage { page, subject }),
        Ok(page) if module == "chat" => render(&ChatPage { page, subject }),
        Ok(page) if module == "social" => render(&SocialPage { page, subject }),
        Ok(page) if module == "images" => render(&ImagesPage { page, subject }),
        Ok(page) => render(&ShopPage { page, subject }),
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn home(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "home"),
        Audience::Everyone,
        String::new(),
    )
}

pub async fn product(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "product"),
        Audience::Everyone,
        id,
    )
}

pub async fn cart(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "cart"),
        Audience::SignedIn,
        String::new(),
    )
}

pub async fn checkout(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "checkout"),
        Audience::SignedIn,
        String::new(),
    )
}

pub async fn orders(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "orders"),
        Audience::SignedIn,
        String::new(),
    )
}

pub async fn order(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(number): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("shop", "order"),
        Audience::SignedIn,
        number,
    )
}

pub async fn events(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("tickets", "events"),
        Audience::Everyone,
        String::new(),
    )
}

pub async fn event(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("tickets", "event"),
        Audience::Everyone,
        id,
    )
}

pub async fn my_tickets(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("tickets", "tickets"),
        Audience::SignedIn,
        String::new(),
    )
}

/// `/staff/{view}`: products, inventory, recommendations, events, consumers, invoices, mails, gate.
pub async fn staff(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(view): Path<String>,
) -> Response {
    let view = match view.as_str() {
        "products" => "staff-products",
        "inventory" => "staff-inventory",
        "recommendations" => "staff-recommendations",
        "events" => "staff-events",
        "consumers" => "staff-consumers",
        "invoices" => "staff-invoices",
        "mails" => "staff-mails",
        "gate" => "staff-gate",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match gate(&keys, &headers, &uri, ("staff", view), Audience::Staff) {
        Ok(page) => render(&StaffPage { page }),
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn chats(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("chat", "chats"),
        Audience::SignedIn,
        String::new(),
    )
}

pub async fn chat(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("chat", "chat"),
        Audience::SignedIn,
        id,
    )
}

/// The feed: everyone may read it; signed in, one may write and like.
pub async fn posts(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("social", "posts"),
        Audience::Everyone,
        String::new(),
    )
}

/// One post and who liked it.
pub async fn post(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("social", "post"),
        Audience::Everyone,
        id,
    )
}

pub async fn notifications(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("social", "notifications"),
        Audience::SignedIn,
        String::new(),
    )
}

/// My images: the upload area, and one's images to filter, edit and delete.
pub async fn images(State(keys): State<Arc<TokenKeys>>, headers: HeaderMap, uri: Uri) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("images", "images"),
        Audience::SignedIn,
        String::new(),
    )
}

/// One of my images: its variants and what is known of the original.
pub async fn image(
    State(keys): State<Arc<TokenKeys>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    page_of(
        &keys,
        &headers,
        &uri,
        ("images", "image"),
        Audience::SignedIn,
        id,
    )
}
