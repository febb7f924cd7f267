//! Across nodes and under load: a viewer on node 2 sees a comment posted on node 1, its
//! likes and its removal, and counts as a viewer everywhere; 500 likes at once over 50
//! comments leave every count equal to its rows and the top 10 in order; a burst over
//! the display rate reaches a viewer as a sample and the rest counted as skipped.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{moderate, on_air, shown, streamer, viewer};
use crate::chat::support::{Person, Ws, run_bus};
use crate::helpers::{Backend, TestApp, spawn_app};

crate::coord_backend_tests!(
    likes_at_once_keep_counts_and_the_top_ten_right,
    a_burst_is_sampled_and_the_rest_counted
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_its_likes_and_its_removal_cross_nodes() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let one = spawn_app(backend).await;
    let two = one.spawn_peer().await;
    let _bus = run_bus(&one);
    let owner = streamer(&one, "owner@nodes.test").await;
    let room = on_air(&one, &owner).await;
    let fan = viewer(&one, "fan@nodes.test").await;
    let watcher = viewer(&one, "watcher@nodes.test").await;
    let mut ws = Ws::connect(&two, &watcher.token).await;
    ws.send(json!({"type": "subscribe", "topic": format!("live:{room}")}))
        .await;
    let _ = ws.next_of("subscribed").await;
    let counted = one.get(&format!("/live/{room}"), None).await;
    assert_eq!(counted.body["viewer_count"], 1, "{}", counted.text);

    let posted = shown(&one, &fan, &room, "ノード越しにこんにちは").await;
    let id = posted["id"].as_str().unwrap().to_owned();
    let frame = ws.next_of("comment").await;
    assert_eq!(frame["id"], id.as_str());
    assert_eq!(frame["user"]["id"], fan.id.as_str());

    let liked = one
        .request(
            Method::PUT,
            &format!("/comments/{id}/like"),
            Some(&watcher.token),
            None,
        )
        .await;
    assert_eq!(liked.body["likes"], 1, "{}", liked.text);
    let likes = ws.next_of("comment_likes").await;
    assert_eq!(
        (likes["comment_id"].as_str(), likes["likes"].as_i64()),
        (Some(id.as_str()), Some(1))
    );

    let removed = one
        .request(
            Method::DELETE,
            &format!("/live/{room}/comments/{id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let gone = ws.next_of("comment_removed").await;
    assert_eq!(gone["comment_id"], id.as_str());
    let archive = two.get(&format!("/live/{room}/comments"), None).await;
    assert_eq!(archive.body["items"], json!([]));
    let top = two.get(&format!("/live/{room}/top-comments"), None).await;
    assert_eq!(top.body["items"], json!([]));
    drop(ws);
    let mut left = false;
    for _ in 0..100 {
        let now = one.get(&format!("/live/{room}"), None).await;
        if now.body["viewer_count"] == 0 {
            left = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(left, "a closed socket stops counting");
}

/// Likes per comment: 5 to 15 each, and 20 for the first: 500 in all.
fn wanted(i: usize) -> usize {
    if i == 0 { 20 } else { 5 + i % 11 }
}

async fn likes_at_once_keep_counts_and_the_top_ten_right(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@top.test").await;
    let room = on_air(&app, &owner).await;
    let mut ids = Vec::new();
    for n in 0..50 {
        let posted = shown(&app, &owner, &room, &format!("第{n}曲目の感想")).await;
        ids.push(posted["id"].as_str().unwrap().to_owned());
    }
    assert_eq!((0..50).map(wanted).sum::<usize>(), 500);
    let mut fans: Vec<Person> = Vec::new();
    for n in 0..20 {
        fans.push(viewer(&app, &format!("fan{n}@top.test")).await);
    }
    let mut likes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for fan in &fans[..wanted(i)] {
            likes.push(like(&app, fan.token.clone(), id.clone()));
            // A second like of the same user changes nothing.
            if i % 7 == 0 {
                likes.push(like(&app, fan.token.clone(), id.clone()));
            }
        }
    }
    futures::future::join_all(likes).await;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.likes, (SELECT COUNT(*) FROM live_comment_likes l WHERE l.comment_id = c.id) \
         FROM live_comments c",
    )
    .fetch_all(app.components.db.reader())
    .await
    .unwrap();
    for (id, likes, counted) in &rows {
        assert_eq!(likes, counted, "{id}");
    }
    let mut expected: Vec<(usize, &String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (wanted(i), id))
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let top = app.get(&format!("/live/{room}/top-comments"), None).await;
    let shown: Vec<(i64, &str)> = top.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["likes"].as_i64().unwrap(), c["id"].as_str().unwrap()))
        .collect();
    let want: Vec<(i64, &str)> = expected[..10]
        .iter()
        .map(|(n, id)| (*n as i64, id.as_str()))
        .collect();
    assert_eq!(shown, want);
    // A ranking `coord` lost is rebuilt from the database.
    app.components
        .coord
        .del(&format!("live:top-built:{room}"))
        .await
        .unwrap();
    app.components
        .coord
        .del(&format!("live:top:{room}"))
        .await
        .unwrap();
    let rebuilt = app.get(&format!("/live/{room}/top-comments"), None).await;
    assert_eq!(rebuilt.body, top.body);
    // Unliking moves the count and the ranking back.
    for fan in &fans[..20] {
        let res = app
            .request(
                Method::DELETE,
                &format!("/comments/{}/like", ids[0]),
                Some(&fan.token),
                None,
            )
            .await;
        assert_eq!(res.status, 200);
    }
    let after = app.get(&format!("/live/{room}/top-comments"), None).await;
    let listed: Vec<&Value> = after.body["items"].as_array().unwrap().iter().collect();
    assert!(listed.iter().all(|c| c["id"] != ids[0].as_str()));
}

/// Likes comment `id` as the holder of `token`, and checks it was taken.
async fn like(app: &TestApp, token: String, id: String) {
    let res = app
        .request(
            Method::PUT,
            &format!("/comments/{id}/like"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

async fn a_burst_is_sampled_and_the_rest_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let _bus = run_bus(&app);
    let owner = streamer(&app, "owner@burst.test").await;
    let room = on_air(&app, &owner).await;
    moderate(&app, &owner, &room, json!({"display_per_second": 5})).await;
    let watcher = viewer(&app, "watcher@burst.test").await;
    let mut ws = Ws::connect(&app, &watcher.token).await;
    ws.send(json!({"type": "subscribe", "topic": format!("live:{room}")}))
        .await;
    let _ = ws.next_of("subscribed").await;
    let emails: Vec<String> = (0..200).map(|n| format!("crowd{n}@burst.test")).collect();
    let crowd: Vec<Person> =
        futures::future::join_all(emails.iter().map(|email| viewer(&app, email))).await;
    let mut own = Ws::connect(&app, &crowd[0].token).await;
    own.send(json!({"type": "subscribe", "topic": format!("live:{room}")}))
        .await;
    let _ = own.next_of("subscribed").await;
    let phrases = ["いいね", "すごい", "great", "かわいい", "神"];
    let posted = futures::future::join_all(crowd.iter().enumerate().map(|(n, who)| {
        let text = phrases[n % phrases.len()];
        let (app, room) = (&app, &room);
        async move { shown(app, who, room, text).await }
    }))
    .await;
    let (mut comments, mut skipped) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    while comments + skipped < 200 {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("comment") => {
                comments += 1;
                seen.insert(frame["id"].as_str().unwrap().to_owned());
            }
            Some("comments_skipped") => skipped += frame["count"].as_i64().unwrap(),
            _ => {}
        }
    }
    assert_eq!(
        comments + skipped,
        200,
        "each comment shown or counted once"
    );
    assert!(skipped > 0, "200 comments at once are more than 5 a second");
    // A commenter sees their own comment, shown to all or left out of the sample.
    loop {
        let frame = own.next_of("comment").await;
        if frame["id"] == posted[0]["id"] {
            break;
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM live_comments").await, 200);

    // A comment the sample left out, liked ten times (`live.highlight_likes`), reaches
    // the watcher after all.
    let left_out = posted
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .find(|id| !seen.contains(id))
        .unwrap();
    for fan in &crowd[..10] {
        like(&app, fan.token.clone(), left_out.clone()).await;
    }
    let highlighted = loop {
        let frame = ws.next_of("comment").await;
        if frame["id"] == left_out.as_str() {
            break frame;
        }
    };
    assert_eq!(highlighted["likes"], 10);
}
