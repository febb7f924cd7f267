//! The live pages (seed 001 §3): the rooms, a room on air with its comments and the top
//! 10, the replay of a room's archive in time, and a room's moderation panel. Their
//! scripts do everything through the live API; the pages themselves ask the live rooms
//! one thing, through the [`LiveRooms`] port the server fills in: who streams a room, so
//! that a room that does not exist is a 404, the panel is for the room's moderators only
//! (its streamer and staff), and the room page shows them their tools.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use matsuri_core::auth::{SESSION_COOKIE, cookie};
use matsuri_core::{Identity, Role, TokenKeys};

use crate::pages::{Audience, Refusal, gate, render};

/// What the live pages ask of the live rooms.
#[async_trait::async_trait]
pub trait LiveRooms: Send + Sync {
    /// The id of the user who streams room `live_id`; `None` when there is no such room.
    async fn streamer_of(&self, live_id: &str) -> anyhow::Result<Option<String>>;
}

/// What the live pages hold: the token keys (who is signed in) and the rooms.
struct LiveUi {
    keys: Arc<TokenKeys>,
    rooms: Arc<dyn LiveRooms>,
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage {
    page: crate::pages::Page,
    /// The room the view is about; empty on the list.
    subject: String,
    /// On the list: whether the visitor may open rooms (streamers and staff). On a room:
    /// whether the visitor moderates it (its streamer, or staff).
    moderator: bool,
}

/// `/live`, `/live/{id}`, `/live/{id}/archive` and `/live/{id}/moderation`.
pub fn routes(keys: Arc<TokenKeys>, rooms: Arc<dyn LiveRooms>) -> Router {
    Router::new()
        .route("/live", get(rooms_page))
        .route("/live/{id}", get(room_page))
        .route("/live/{id}/archive", get(archive_page))
        .route("/live/{id}/moderation", get(moderation_page))
        .with_state(Arc::new(LiveUi { keys, rooms }))
}

/// Who the session cookie says the visitor is, if anyone.
fn visitor(keys: &TokenKeys, headers: &HeaderMap) -> Option<Identity> {
    cookie(headers, SESSION_COOKIE).and_then(|token| keys.verify(token).ok())
}

/// Whether `who` moderates a room streamed by `streamer`.
fn moderates(who: Option<&Identity>, streamer: &str) -> bool {
    who.is_some_and(|who| who.role == Role::Staff || who.user_id.as_str() == streamer)
}

/// The rooms; streamers and staff also get the form that opens one.
async fn rooms_page(State(ui): State<Arc<LiveUi>>, headers: HeaderMap, uri: Uri) -> Response {
    let page = match gate(
        &ui.keys,
        &headers,
        &uri,
        ("live-rooms", "live-rooms"),
        Audience::Everyone,
    ) {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let moderator = visitor(&ui.keys, &headers)
        .is_some_and(|who| matches!(who.role, Role::Streamer | Role::Staff));
    render(&LivePage {
        page,
        subject: String::new(),
        moderator,
    })
}

/// A page about one room (`view`, its script `module`) for `audience`: 404 when there is
/// no such room, and with `moderators_only`, 403 for anyone who does not moderate it.
async fn room_view(
    ui: &LiveUi,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
    view: &'static str,
    audience: Audience,
    moderators_only: bool,
) -> Response {
    let page = match gate(&ui.keys, headers, uri, (view, view), audience) {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(id) = matsuri_core::ids::parse_uuid(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let streamer = match ui.rooms.streamer_of(&id).await {
        Ok(Some(streamer)) => streamer,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                live_id = id,
                "reading a live room failed"
            );
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let moderator = moderates(visitor(&ui.keys, headers).as_ref(), &streamer);
    if moderators_only && !moderator {
        return Refusal::ModeratorsOnly.into_response();
    }
    render(&LivePage {
        page,
        subject: id,
        moderator,
    })
}

/// A room: the video's place, the comments as they come, the top 10, the comment form.
async fn room_page(
    State(ui): State<Arc<LiveUi>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    room_view(
        &ui,
        &headers,
        &uri,
        &id,
        "live-room",
        Audience::Everyone,
        false,
    )
    .await
}

/// A room's replay: the comments shown as the scrubber passes the moment they were written.
async fn archive_page(
    State(ui): State<Arc<LiveUi>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    room_view(
        &ui,
        &headers,
        &uri,
        &id,
        "live-archive",
        Audience::Everyone,
        false,
    )
    .await
}

/// A room's moderation panel, for its streamer and staff.
async fn moderation_page(
    State(ui): State<Arc<LiveUi>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    room_view(
        &ui,
        &headers,
        &uri,
        &id,
        "live-moderation",
        Audience::SignedIn,
        true,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;

    use matsuri_core::ids::UserId;
    use matsuri_core::{Clock, SystemClock};

    const ROOM: &str = "0190c0de-0000-7000-8000-0000000000aa";

    /// One room, streamed by `streamer`; a room id ending in `ff` fails to be read.
    struct OneRoom {
        streamer: UserId,
    }

    #[async_trait::async_trait]
    impl LiveRooms for OneRoom {
        async fn streamer_of(&self, live_id: &str) -> anyhow::Result<Option<String>> {
            if live_id.ends_with("ff") {
                anyhow::bail!("the rooms are unreachable");
            }
            Ok((live_id == ROOM).then(|| self.streamer.as_str().to_owned()))
        }
    }

    struct Site {
        keys: Arc<TokenKeys>,
        streamer: UserId,
    }

    impl Site {
        fn new() -> Self {
            Site {
                keys: Arc::new(TokenKeys::new(b"a secret for the live page tests", 3600)),
                streamer: UserId::generate(),
            }
        }

        /// GET `path` as `who` (signed out when `None`).
        async fn get(&self, path: &str, who: Option<(&UserId, Role)>) -> Response {
            let mut req = Request::get(path).header(header::ACCEPT_LANGUAGE, "en");
            if let Some((user, role)) = who {
                let (token, _) = self.keys.issue(user, role, SystemClock.now_ms()).unwrap();
                req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={token}"));
            }
            let rooms = Arc::new(OneRoom {
                streamer: self.streamer.clone(),
            });
            crate::secured(
                routes(self.keys.clone(), rooms),
                crate::policy(&crate::Elsewhere::default()),
            )
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
        }
    }

    async fn text(res: Response) -> String {
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_rooms_are_for_everyone_and_the_open_form_for_streamers_and_staff() {
        let site = Site::new();
        let res = site.get("/live", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="live-rooms""#), "{html}");
        assert!(html.contains(r#"src="/assets/js/live-rooms.js""#), "{html}");
        assert!(html.contains(r#"<a href="/live">Live</a>"#), "{html}");
        assert!(!html.contains(r#"id="open-form""#), "{html}");
        let fan = UserId::generate();
        let html = text(site.get("/live", Some((&fan, Role::Customer))).await).await;
        assert!(!html.contains(r#"id="open-form""#), "{html}");
        for role in [Role::Streamer, Role::Staff] {
            let html = text(site.get("/live", Some((&fan, role))).await).await;
            assert!(html.contains(r#"id="open-form""#), "{html}");
        }
    }

    #[tokio::test]
    async fn a_room_shows_its_moderators_their_tools() {
        let site = Site::new();
        let path = format!("/live/{ROOM}");
        let res = site.get(&path, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(res).await;
        assert!(html.contains(r#"data-view="live-room""#), "{html}");
        assert!(html.contains(&format!(r#"data-id="{ROOM}""#)), "{html}");
        assert!(html.contains(r#"data-moderator="false""#), "{html}");
        assert!(
            html.contains(&format!("/login?next=/live/{ROOM}")),
            "{html}"
        );
        assert!(!html.contains(r#"id="comment-form""#), "{html}");
        assert!(html.contains(r#"class="video-placeholder""#), "{html}");

        let fan = UserId::generate();
        let html = text(site.get(&path, Some((&fan, Role::Customer))).await).await;
        assert!(html.contains(r#"id="comment-form""#), "{html}");
        assert!(html.contains(r#"maxlength="200""#), "{html}");
        assert!(html.contains(r#"data-moderator="false""#), "{html}");
        assert!(!html.contains("/moderation"), "{html}");
        let other_streamer = text(site.get(&path, Some((&fan, Role::Streamer))).await).await;
        assert!(other_streamer.contains(r#"data-moderator="false""#));
        for (user, role) in [(&site.streamer, Role::Streamer), (&fan, Role::Staff)] {
            let html = text(site.get(&path, Some((user, role))).await).await;
            assert!(html.contains(r#"data-moderator="true""#), "{html}");
            assert!(
                html.contains(&format!(r#"href="/live/{ROOM}/moderation""#)),
                "{html}"
            );
        }
        let html = text(site.get(&format!("{path}/archive"), None).await).await;
        assert!(html.contains(r#"data-view="live-archive""#), "{html}");
        assert!(html.contains(r#"type="range""#), "{html}");
    }

    #[tokio::test]
    async fn the_panel_is_for_the_rooms_moderators_only() {
        let site = Site::new();
        let path = format!("/live/{ROOM}/moderation");
        let res = site.get(&path, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers()[header::LOCATION],
            format!("/login?next={path}")
        );
        let fan = UserId::generate();
        for role in [Role::Customer, Role::Streamer] {
            let res = site.get(&path, Some((&fan, role))).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{role:?}");
        }
        for (user, role) in [(&site.streamer, Role::Streamer), (&fan, Role::Staff)] {
            let res = site.get(&path, Some((user, role))).await;
            assert_eq!(res.status(), StatusCode::OK);
            let html = text(res).await;
            assert!(html.contains(r#"data-view="live-moderation""#), "{html}");
            for id in ["settings-form", "ban-form", "unban-form", "review"] {
                assert!(html.contains(&format!(r#"id="{id}""#)), "{id}: {html}");
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_room_is_not_found_and_an_unreadable_one_an_error() {
        let site = Site::new();
        let staff = (&site.streamer, Role::Staff);
        for path in [
            "/live/not-a-room",
            "/live/0190c0de-0000-7000-8000-000000000001",
            "/live/0190c0de-0000-7000-8000-000000000001/archive",
            "/live/0190c0de-0000-7000-8000-000000000001/moderation",
        ] {
            let res = site.get(path, Some(staff)).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let res = site
            .get("/live/0190c0de-0000-7000-8000-0000000000ff", None)
            .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
