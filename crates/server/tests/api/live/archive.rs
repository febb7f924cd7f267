//! The archive and the stream: comments oldest first in pages, a replay window by offset
//! from the start, and the server-sent event stream resuming from `Last-Event-ID`.

use std::time::Duration;

use serde_json::Value;

use super::support::{moderate, on_air, shown, streamer, viewer};
use crate::chat::support::run_bus;
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(
    the_archive_pages_and_replays_by_offset,
    the_stream_resumes_after_the_last_event
);

async fn the_archive_pages_and_replays_by_offset(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = streamer(&app, "owner@archive.test").await;
    let room = on_air(&app, &owner).await;
    let fan = viewer(&app, "fan@archive.test").await;
    let sayings = ["一曲目", "二曲目", "三曲目", "四曲目", "五曲目"];
    let mut ids = Vec::new();
    for saying in sayings {
        app.clock.advance(Duration::from_secs(1));
        let posted = shown(&app, &fan, &room, saying).await;
        ids.push(posted["id"].as_str().unwrap().to_owned());
    }
    let first = app
        .get(&format!("/live/{room}/comments?limit=2"), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let texts = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&first.body), ["一曲目", "二曲目"]);
    assert_eq!(first.body["items"][0]["offset_ms"], 1_000);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let next = app
        .get(
            &format!("/live/{room}/comments?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(texts(&next.body), ["三曲目", "四曲目"]);
    let after = app
        .get(&format!("/live/{room}/comments?after={}", ids[3]), None)
        .await;
    assert_eq!(texts(&after.body), ["五曲目"]);
    assert!(after.body["next_cursor"].is_null());
    // The comments written from 2 s to before 4 s into the show.
    let window = app
        .get(
            &format!("/live/{room}/comments?from_ms=2000&to_ms=4000"),
            None,
        )
        .await;
    assert_eq!(texts(&window.body), ["二曲目", "三曲目"]);
    let nowhere = app
        .get(&format!("/live/{room}/comments?after=not-a-comment"), None)
        .await;
    assert_eq!(nowhere.status, 200);
    assert_eq!(texts(&nowhere.body), Vec::<String>::new());
    let negative = app
        .get(&format!("/live/{room}/comments?from_ms=-1"), None)
        .await;
    assert_eq!(negative.status, 422);
}

/// Reads server-sent events until `count` `data:` lines came; their (id, JSON) pairs.
async fn events(body: &mut reqwest::Response, count: usize) -> Vec<(Option<String>, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    while out.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(15), body.chunk())
            .await
            .expect("an event in time")
            .expect("a readable chunk")
            .expect("the stream is open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(rest) = line.strip_prefix("id:") {
                    id = Some(rest.trim().to_owned());
                } else if let Some(rest) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(rest.trim()).unwrap());
                }
            }
            if let Some(data) = data {
                out.push((id, data));
            }
        }
    }
    out
}

async fn the_stream_resumes_after_the_last_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let _bus = run_bus(&app);
    let owner = streamer(&app, "owner@sse.test").await;
    let room = on_air(&app, &owner).await;
    // No sampling here: every comment reaches the stream.
    moderate(
        &app,
        &owner,
        &room,
        serde_json::json!({"display_per_second": 1000}),
    )
    .await;
    let fan = viewer(&app, "fan@sse.test").await;
    let mut ids = Vec::new();
    for saying in ["いち", "に", "さん"] {
        let posted = shown(&app, &fan, &room, saying).await;
        ids.push(posted["id"].as_str().unwrap().to_owned());
    }
    let missing = app
        .http
        .get(format!(
            "{}/api/v1/live/{}/stream",
            app.base,
            uuid::Uuid::now_v7()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let res = app
        .http
        .get(format!("{}/api/v1/live/{room}/stream", app.base))
        .header("last-event-id", &ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res;
    let missed = events(&mut body, 2).await;
    let seen: Vec<(Option<String>, &str)> = missed
        .iter()
        .map(|(id, data)| (id.clone(), data["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [(Some(ids[1].clone()), "に"), (Some(ids[2].clone()), "さん")]
    );
    // Then the live frames: the comments, and what the display rate left out.
    let posted = shown(&app, &fan, &room, "よん").await;
    loop {
        let (id, data) = events(&mut body, 1).await.remove(0);
        if data["type"] == "comment" && data["text"] == "よん" {
            assert_eq!(id.as_deref(), posted["id"].as_str());
            break;
        }
        assert_ne!(
            data["text"], "いち",
            "a comment before the last event is not sent again"
        );
    }
}
