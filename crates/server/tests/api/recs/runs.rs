//! Runs that go wrong: one stopped half-way through writing leaves the previous result
//! served; two at once, one is refused; one whose node died holds the lease until it
//! lapses, then is marked failed; staff start runs over the API.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{activity, run_batch, two_groups};
use crate::helpers::{Backend, spawn_app};
use matsuri_recs::{Progress, RecsError};

crate::coord_backend_tests!(
    a_run_stopped_half_way_leaves_the_previous_one_served,
    two_runs_at_once_one_is_refused,
    staff_start_runs_and_see_them
);

async fn a_run_stopped_half_way_leaves_the_previous_one_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = two_groups(&app).await;
    let first = run_batch(&app).await;
    let token = &shop.users[0].0;
    let before = app.get("/recommendations/me", Some(token)).await;
    assert_eq!(before.status, StatusCode::OK);

    // More activity, then a run that stops once its lists are being written.
    activity(
        &app,
        token,
        json!({"kind": "view", "product_id": shop.b[0]}),
    )
    .await;
    app.components.recs.log().flush().await;
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    let progress: Progress = Arc::new(move |stage: &str, _, _| {
        if stage == "writing" {
            stopper.cancel();
        }
    });
    let stopped = app
        .components
        .recs
        .run_now("test", Some(progress), stop)
        .await;
    assert!(matches!(stopped, Err(RecsError::Stopped)), "{stopped:?}");

    let after = app.get("/recommendations/me", Some(token)).await;
    assert_eq!(after.body, before.body, "the previous run is still served");
    let lists = app
        .count("SELECT COUNT(DISTINCT run_id) FROM recs_lists")
        .await;
    assert_eq!(lists, 1, "the stopped run's lists are gone");
    let staff = app.staff_token().await;
    let runs = app.get("/admin/recommendations/runs", Some(&staff)).await;
    assert_eq!(runs.body[0]["status"], "failed", "{}", runs.text);
    assert_eq!(runs.body[1]["id"], first.run_id.as_str());
    // The lease was given back: the next run goes.
    let next = run_batch(&app).await;
    assert_ne!(next.run_id, first.run_id);
}

async fn two_runs_at_once_one_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    two_groups(&app).await;
    let recs = &app.components.recs;
    let (one, two) = tokio::join!(
        recs.run_now("test", None, CancellationToken::new()),
        recs.run_now("test", None, CancellationToken::new())
    );
    let busy = [&one, &two]
        .iter()
        .filter(|r| matches!(r, Err(RecsError::Busy)))
        .count();
    assert_eq!(busy, 1, "{one:?} {two:?}");
    assert!(one.is_ok() || two.is_ok());

    // A run whose node died keeps the lease until it lapses, then is marked failed.
    let crashed = recs.begin("test").await.expect("the lease is free");
    let crashed_id = crashed.run_id.clone();
    drop(crashed);
    assert!(matches!(
        recs.run_now("test", None, CancellationToken::new()).await,
        Err(RecsError::Busy)
    ));
    app.clock
        .advance(Duration::from_secs(recs.settings().lease_seconds + 1));
    run_batch(&app).await;
    let staff = app.staff_token().await;
    let runs = app.get("/admin/recommendations/runs", Some(&staff)).await;
    let crashed = runs
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == crashed_id.as_str());
    assert_eq!(crashed.unwrap()["status"], "failed", "{}", runs.text);
}

async fn staff_start_runs_and_see_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = two_groups(&app).await;
    let customer = &shop.users[0].0;
    let res = app
        .post("/admin/recommendations/runs", Some(customer), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code(), "forbidden");
    let res = app.get("/admin/recommendations/runs", Some(customer)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app
        .post("/admin/recommendations/runs", None, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    let staff = app.staff_token().await;
    let res = app
        .post("/admin/recommendations/runs", Some(&staff), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let run_id = res.body["run_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = app.get("/admin/recommendations/runs", Some(&staff)).await;
        let run = runs
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == run_id.as_str())
            .cloned();
        let status = run
            .as_ref()
            .map(|r| r["status"].clone())
            .unwrap_or_default();
        if status == "succeeded" {
            break;
        }
        assert_eq!(status, "running", "{}", runs.text);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = app.get("/recommendations/me", Some(customer)).await;
    assert_ne!(res.body["items"][0]["reason"], "popular", "{}", res.text);
}
