//! Posting comments: the rate limit exact at its boundary with a right `Retry-After`,
//! slow mode, moderators exempt; each NG-word variant refused and the allowed compound
//! passed; repeats and floods refused; the classifier's refusal, and a borderline
//! comment held, approved by the streamer, broadcast then, and learnt from.

use std::time::Duration;

use serde_json::json;

use super::support::{comment, moderate, on_air, shown, streamer, viewer};
use crate::chat::support::{Ws, run_bus};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(
    the_eleventh_comment_in_a_minute_waits_for_the_first_to_age,
    slow_mode_spaces_comments_and_moderators_are_exempt,
    ng_words_match_every_spelling_but_the_allowed_compound,
    repeats_and_floods_are_refused,
    the_classifier_refuses_spam_and_holds_the_borderline_for_review
);

/// Eleven different things a viewer might say.
const SAYINGS: [&str; 11] = [
    "最高！",
    "こんばんは",
    "this song is amazing",
    "待ってました",
    "歌うますぎ",
    "great show tonight",
    "ギターかっこいい",
    "hello from Osaka",
    "アンコール",
    "楽しい",
    "次の曲は何かな",
];

async fn the_eleventh_comment_in_a_minute_waits_for_the_first_to_age(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@rate.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@rate.test").await;
    for saying in &SAYINGS[..10] {
        shown(&app, &fan, &room, saying).await;
        app.clock.advance(Duration::from_secs(1));
    }
    // Ten seconds after the first: it leaves the window in fifty.
    let refused = comment(&app, &fan, &room, SAYINGS[10]).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.code(), "rate_limited");
    assert_eq!(refused.headers["retry-after"], "50");
    app.clock.advance(Duration::from_secs(49));
    let still = comment(&app, &fan, &room, SAYINGS[10]).await;
    assert_eq!(still.status, 429);
    assert_eq!(still.headers["retry-after"], "1");
    app.clock.advance(Duration::from_secs(1));
    shown(&app, &fan, &room, SAYINGS[10]).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM live_comments").await,
        11,
        "refused comments store nothing"
    );
}

async fn slow_mode_spaces_comments_and_moderators_are_exempt(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@slow.test").await;
    let room = on_air(&app, &owner).await;
    moderate(&app, &owner, &room, json!({"slow_mode_seconds": 30})).await;
    let fan = viewer(&app, "fan@slow.test").await;
    shown(&app, &fan, &room, SAYINGS[0]).await;
    app.clock.advance(Duration::from_secs(12));
    let refused = comment(&app, &fan, &room, SAYINGS[1]).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.headers["retry-after"], "18");
    app.clock.advance(Duration::from_secs(18));
    shown(&app, &fan, &room, SAYINGS[1]).await;
    // The streamer moderates: no limit, no slow mode.
    for n in 0..15 {
        shown(&app, &owner, &room, &format!("announcement {n}")).await;
    }
}

async fn ng_words_match_every_spelling_but_the_allowed_compound(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@ng.test").await;
    let room = on_air(&app, &owner).await;
    moderate(
        &app,
        &owner,
        &room,
        json!({"ng_words": ["ナイフ"], "allowed_words": ["ディナーナイフ"], "rate_limit_per_minute": 600}),
    )
    .await;
    let fan = viewer(&app, "fan@ng.test").await;
    for text in [
        "ナイフ",
        "ナ イ フ",
        "ﾅｲﾌ",
        "ないふ",
        "ナ・イ・フ持ってる",
        "ディナーナイフとナイフ",
    ] {
        let res = comment(&app, &fan, &room, text).await;
        assert_eq!(res.status, 400, "{text}: {}", res.text);
        assert_eq!(res.code(), "spam_detected");
        assert_eq!(res.body["reason"], "ng_word", "{text}");
    }
    shown(&app, &fan, &room, "ディナーナイフを買いました").await;
    moderate(&app, &owner, &room, json!({"links_allowed": false})).await;
    let link = comment(&app, &fan, &room, "詳しくは example.com で").await;
    assert_eq!(link.status, 400, "{}", link.text);
    assert_eq!(link.body["reason"], "ng_word");
    assert_eq!(app.count("SELECT COUNT(*) FROM live_comments").await, 1);
}

async fn repeats_and_floods_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@repeat.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@repeat.test").await;
    let other = viewer(&app, "other@repeat.test").await;
    shown(&app, &fan, &room, "今日は最高の夜").await;
    for again in ["今日は最高の夜", "今日は 最高の夜!!", "今日は最高の夜だ"] {
        let res = comment(&app, &fan, &room, again).await;
        assert_eq!(res.status, 400, "{again}: {}", res.text);
        assert_eq!(res.body["reason"], "repeated", "{again}");
    }
    // Someone else may say the same; and after the window, so may the first.
    shown(&app, &other, &room, "今日は最高の夜").await;
    let flood = comment(&app, &other, &room, "wwwwwwwwwwwwwwwwwwww").await;
    assert_eq!(flood.body["reason"], "repeated", "{}", flood.text);
    shown(&app, &other, &room, "www").await;
    app.clock.advance(Duration::from_secs(61));
    shown(&app, &fan, &room, "今日は最高の夜").await;
}

async fn the_classifier_refuses_spam_and_holds_the_borderline_for_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let _bus = run_bus(&app);
    let owner = streamer(&app, "owner@model.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@model.test").await;
    let watcher = viewer(&app, "watcher@model.test").await;
    let mut ws = Ws::connect(&app, &watcher.token).await;
    ws.send(json!({"type": "subscribe", "topic": format!("live:{room}")}))
        .await;
    let _ = ws.next_of("subscribed").await;

    let spam = comment(
        &app,
        &fan,
        &room,
        "Free giveaway!! DM me to claim your prize http://scam.example",
    )
    .await;
    assert_eq!(spam.status, 400, "{}", spam.text);
    assert_eq!(spam.body["reason"], "classifier");

    let held = comment(&app, &fan, &room, matsuri_spam::BORDERLINE_EXAMPLE).await;
    assert_eq!(held.status, 202, "{}", held.text);
    assert_eq!(held.body["status"], "held");
    let held_id = held.body["comment_id"].as_str().unwrap().to_owned();
    let archive = app.get(&format!("/live/{room}/comments"), None).await;
    assert_eq!(
        archive.body["items"],
        json!([]),
        "a held comment is not shown"
    );
    assert!(ws.drain().await.iter().all(|f| f["type"] != "comment"));

    let queue = app
        .get(&format!("/live/{room}/review"), Some(&owner.token))
        .await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    assert_eq!(queue.body["items"][0]["id"], held_id.as_str());
    let refused = app
        .post(
            &format!("/live/{room}/review/{held_id}"),
            Some(&fan.token),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(refused.status, 403, "a viewer does not review");
    let approved = app
        .post(
            &format!("/live/{room}/review/{held_id}"),
            Some(&owner.token),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let frame = ws.next_of("comment").await;
    assert_eq!(frame["id"], held_id.as_str());
    assert_eq!(frame["text"], matsuri_spam::BORDERLINE_EXAMPLE);
    let again = app
        .post(
            &format!("/live/{room}/review/{held_id}"),
            Some(&owner.token),
            json!({"decision": "reject"}),
        )
        .await;
    assert_eq!(again.status, 404, "decided once");

    // The decision is an example for the next model, which this node takes up at once.
    let report = app.components.live.train_now().await.unwrap();
    assert_eq!(report.labelled, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM live_spam_models").await, 1);
}
