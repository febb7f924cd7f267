//! Who may do what, and bad input: only streamers and staff open rooms; only a room's
//! moderators start, end, moderate, ban and review; a banned user is refused until the
//! ban ends; a room not on air takes no comment; empty, too long and non-UTF-8 bodies
//! are refused with nothing stored.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::support::{comment, on_air, shown, streamer, viewer};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(
    only_moderators_moderate,
    a_ban_holds_until_it_ends,
    bad_comments_store_nothing,
    a_room_off_air_takes_no_comment
);

async fn only_moderators_moderate(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@mods.test").await;
    let other = streamer(&app, "other@mods.test").await;
    let fan = viewer(&app, "fan@mods.test").await;
    let denied = app
        .post("/live", Some(&fan.token), json!({"title": "mine"}))
        .await;
    assert_eq!(denied.status, 403, "a customer opens no room");
    let room = on_air(&app, &owner).await;
    let posted = shown(&app, &fan, &room, "こんばんは").await;
    let comment_id = posted["id"].as_str().unwrap();
    for who in [&fan, &other] {
        let token = Some(who.token.as_str());
        let attempts = [
            app.post(&format!("/live/{room}/end"), token, json!({})).await,
            app.get(&format!("/live/{room}/moderation"), token).await,
            app.request(
                Method::PUT,
                &format!("/live/{room}/moderation"),
                token,
                Some(json!({"ng_words": [], "rate_limit_per_minute": 600, "slow_mode_seconds": 0, "links_allowed": true, "display_per_second": 25})),
            )
            .await,
            app.request(
                Method::DELETE,
                &format!("/live/{room}/comments/{comment_id}"),
                token,
                None,
            )
            .await,
            app.post(
                &format!("/live/{room}/bans"),
                token,
                json!({"user_id": fan.id}),
            )
            .await,
            app.get(&format!("/live/{room}/review"), token).await,
        ];
        for attempt in attempts {
            assert_eq!(attempt.status, 403, "{}", attempt.text);
            assert_eq!(attempt.code(), "forbidden");
        }
    }
    let archive = app.get(&format!("/live/{room}/comments"), None).await;
    assert_eq!(archive.body["items"].as_array().unwrap().len(), 1);
    let room_now = app.get(&format!("/live/{room}"), None).await;
    assert_eq!(room_now.body["status"], "live");
    // Staff moderate every room.
    let staff = app.staff_token().await;
    let settings = app
        .get(&format!("/live/{room}/moderation"), Some(&staff))
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    assert_eq!(settings.body["rate_limit_per_minute"], 10);
    let bad = app
        .request(
            Method::PUT,
            &format!("/live/{room}/moderation"),
            Some(&staff),
            Some(json!({"ng_words": [""], "rate_limit_per_minute": 0, "slow_mode_seconds": -1, "links_allowed": true, "display_per_second": 25})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 3);
}

async fn a_ban_holds_until_it_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@ban.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@ban.test").await;
    let banned = app
        .post(
            &format!("/live/{room}/bans"),
            Some(&owner.token),
            json!({"user_id": fan.id, "seconds": 600}),
        )
        .await;
    assert_eq!(banned.status, 201, "{}", banned.text);
    let until = banned.body["until"].as_str().unwrap().to_owned();
    let refused = comment(&app, &fan, &room, "まだいる？").await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.code(), "banned");
    assert_eq!(refused.body["until"], until.as_str());
    app.clock.advance(Duration::from_secs(601));
    shown(&app, &fan, &room, "戻ってきた").await;

    let forever = app
        .post(
            &format!("/live/{room}/bans"),
            Some(&owner.token),
            json!({"user_id": fan.id}),
        )
        .await;
    assert_eq!(forever.status, 201);
    let refused = comment(&app, &fan, &room, "もう一回").await;
    assert_eq!(refused.code(), "banned");
    assert!(refused.body["until"].is_null());
    let lifted = app
        .request(
            Method::DELETE,
            &format!("/live/{room}/bans/{}", fan.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(lifted.status, 204);
    shown(&app, &fan, &room, "ありがとう").await;
}

async fn bad_comments_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@bad.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@bad.test").await;
    let path = format!("/live/{room}/comments");
    let no_token = app.post(&path, None, json!({"text": "hi"})).await;
    assert_eq!(no_token.status, 401);
    let no_token_bad = app.post(&path, None, json!({"text": ""})).await;
    assert_eq!(no_token_bad.status, 401, "authentication comes first");
    for text in ["", "   ", &"あ".repeat(201)] {
        let res = comment(&app, &fan, &room, text).await;
        assert_eq!(res.status, 422, "{}", res.text);
        assert_eq!(res.code(), "validation_failed");
    }
    let not_text = app.post(&path, Some(&fan.token), json!({"text": 5})).await;
    assert_eq!(not_text.status, 400);
    let raw = app
        .http
        .post(format!("{}/api/v1{path}", app.base))
        .bearer_auth(&fan.token)
        .header("content-type", "application/json")
        .body(b"{\"text\": \"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let problem: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request");
    let missing = comment(&app, &fan, &uuid::Uuid::now_v7().to_string(), "hi").await;
    assert_eq!(missing.status, 404);
    let not_an_id = comment(&app, &fan, "room-1", "hi").await;
    assert_eq!(not_an_id.status, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM live_comments").await, 0);
    // The longest comment there may be, from the streamer (no spam check on theirs).
    shown(&app, &owner, &room, &"あいうえお".repeat(40)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM live_comments").await, 1);
}

async fn a_room_off_air_takes_no_comment(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@air.test").await;
    let fan = viewer(&app, "fan@air.test").await;
    let res = app
        .post("/live", Some(&owner.token), json!({"title": "Later"}))
        .await;
    let room = res.body["id"].as_str().unwrap().to_owned();
    let early = comment(&app, &fan, &room, "まだ？").await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert_eq!(early.code(), "live_not_active");
    app.post(
        &format!("/live/{room}/start"),
        Some(&owner.token),
        json!({}),
    )
    .await;
    shown(&app, &fan, &room, "始まった").await;
    let ended = app
        .post(&format!("/live/{room}/end"), Some(&owner.token), json!({}))
        .await;
    assert_eq!(ended.body["status"], "ended", "{}", ended.text);
    assert!(ended.body["ended_at"].is_string());
    let late = comment(&app, &fan, &room, "終わった").await;
    assert_eq!(late.code(), "live_not_active");
    let restart = app
        .post(
            &format!("/live/{room}/start"),
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_eq!(restart.status, 409, "an ended live stays ended");
    let listed = app.get("/live", None).await;
    assert_eq!(listed.body["items"][0]["id"], room.as_str());
}
