//! What the live stories share: a streamer, a room on air, a comment posted.

use serde_json::{Value, json};

use crate::chat::support::{Person, person};
use crate::helpers::{PASSWORD, TestApp};

/// A user with the streamer role.
pub async fn streamer(app: &TestApp, email: &str) -> Person {
    let new = matsuri_accounts::NewUser::parse(email, PASSWORD, "Streamer").unwrap();
    app.components
        .accounts
        .create(new, matsuri_core::Role::Streamer)
        .await
        .unwrap();
    let res = app
        .post(
            "/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_owned();
    let id = app.components.keys.verify(&token).unwrap().user_id;
    Person {
        token,
        id: id.as_str().to_owned(),
    }
}

/// A room of `owner`, on air; its id.
pub async fn on_air(app: &TestApp, owner: &Person) -> String {
    let res = app
        .post(
            "/live",
            Some(&owner.token),
            json!({"title": "Tonight's show"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["status"], "scheduled");
    let id = res.body["id"].as_str().unwrap().to_owned();
    let started = app
        .post(&format!("/live/{id}/start"), Some(&owner.token), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(started.body["status"], "live");
    id
}

/// Posts a comment; the whole answer.
pub async fn comment(
    app: &TestApp,
    who: &Person,
    room: &str,
    text: &str,
) -> crate::helpers::Answer {
    app.post(
        &format!("/live/{room}/comments"),
        Some(&who.token),
        json!({"text": text}),
    )
    .await
}

/// Posts a comment that must be shown; the comment.
pub async fn shown(app: &TestApp, who: &Person, room: &str, text: &str) -> Value {
    let res = comment(app, who, room, text).await;
    assert_eq!(res.status, 201, "{text}: {}", res.text);
    res.body
}

/// Sets the room's moderation settings as `owner`.
pub async fn moderate(app: &TestApp, owner: &Person, room: &str, settings: Value) {
    let mut body = json!({
        "ng_words": [],
        "rate_limit_per_minute": 10,
        "slow_mode_seconds": 0,
        "links_allowed": true,
        "display_per_second": 25,
    });
    if let (Some(body), Some(settings)) = (body.as_object_mut(), settings.as_object()) {
        body.extend(settings.clone());
    }
    let res = app
        .request(
            reqwest::Method::PUT,
            &format!("/live/{room}/moderation"),
            Some(&owner.token),
            Some(body),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A fresh viewer.
pub async fn viewer(app: &TestApp, email: &str) -> Person {
    person(app, email).await
}
