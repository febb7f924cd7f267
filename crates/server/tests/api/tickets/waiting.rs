//! Long-polled queue status (`Prefer: wait=N`): a waiting fan near the front is answered
//! when admitted, or when the wait ends; a fan far back, or one past the process's limit
//! of held requests, is answered at once; shutting down answers every held request.

use std::time::Duration;

use reqwest::StatusCode;

use super::event_body;
use crate::helpers::{Answer, Backend, TestApp, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    a_held_status_answers_on_admission,
    a_held_status_answers_when_the_wait_ends,
    only_fans_near_the_front_are_held_and_only_so_many,
    a_freed_slot_brings_the_next_admission_forward,
);

/// Long enough to be sure a request is being held: it cannot be answered before the
/// admission or the end of its wait, both far off.
const STILL_HELD: Duration = Duration::from_millis(300);
/// The wait the admission tests ask for, and a bound well inside it: an answer within
/// the bound came from the admission, not from the end of the wait.
const WAIT: u64 = 20;
const WELL_BEFORE_THE_WAIT_ENDS: Duration = Duration::from_secs(15);

fn applied(answer: &Answer) -> Option<&str> {
    answer
        .headers
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
}

/// An event admitting one fan at a time, the first of `fans` admitted and the rest
/// waiting in order; returns the event and every fan's queue token.
async fn one_at_a_time(app: &TestApp, fans: &[&str]) -> (String, Vec<String>) {
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 1, 600))
        .await;
    let mut queue_tokens = Vec::new();
    for fan in fans {
        queue_tokens.push(app.join(fan, &event).await);
    }
    let admitted = app.components.tickets.admit_next_batch(&event).await;
    assert_eq!(admitted.unwrap(), 1);
    (event, queue_tokens)
}

async fn a_held_status_answers_on_admission(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.register("first@example.com").await;
    let second = app.register("second@example.com").await;
    let (event, queues) = one_at_a_time(&app, &[&first, &second]).await;

    let held = app.await_queue_status(&event, &queues[1], WAIT);
    tokio::pin!(held);
    assert!(
        tokio::time::timeout(STILL_HELD, &mut held).await.is_err(),
        "a waiting fan near the front is held"
    );
    let left = app.leave(&first, &event).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text);
    let admitted = app.components.tickets.admit_next_batch(&event).await;
    assert_eq!(admitted.unwrap(), 1);

    let answer = tokio::time::timeout(WELL_BEFORE_THE_WAIT_ENDS, held)
        .await
        .expect("answered on admission");
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["state"], "active", "{}", answer.text);
    assert_eq!(applied(&answer), Some("wait=20"));
    let again = app.queue_status(&event, &queues[1]).await;
    assert_eq!(again.body["access_token"], answer.body["access_token"]);
    assert!(answer.body["access_token"].is_string());
}

async fn a_held_status_answers_when_the_wait_ends(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tickets.max_queue_wait_seconds = 1).await;
    let first = app.register("first@example.com").await;
    let second = app.register("second@example.com").await;
    let (event, queues) = one_at_a_time(&app, &[&first, &second]).await;

    let answer = app.await_queue_status(&event, &queues[1], 30).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["state"], "waiting", "{}", answer.text);
    assert_eq!(answer.body["position"], 1);
    assert_eq!(
        answer.body["poll_after_seconds"], 0,
        "a held fan may ask again at once"
    );
    assert_eq!(
        applied(&answer),
        Some("wait=1"),
        "capped at the server's most"
    );

    let plain = app.queue_status(&event, &queues[1]).await;
    assert_eq!(plain.body["state"], "waiting");
    assert!(plain.body["poll_after_seconds"].as_u64().unwrap() >= 1);
    assert_eq!(applied(&plain), None);
}

async fn only_fans_near_the_front_are_held_and_only_so_many(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tickets.max_held_queue_requests = 1).await;
    let mut fans = Vec::new();
    for i in 0..6 {
        fans.push(app.register(&format!("fan{i}@example.com")).await);
    }
    let fans: Vec<&str> = fans.iter().map(String::as_str).collect();
    let (event, queues) = one_at_a_time(&app, &fans).await;

    // One fan admitted a second: the last of five waiting expects to wait 5 s.
    let far = app.await_queue_status(&event, &queues[5], 2).await;
    assert_eq!(far.body["state"], "waiting", "{}", far.text);
    assert_eq!(far.body["position"], 5);
    assert_eq!(applied(&far), None, "too far back to be held");
    assert!(far.body["poll_after_seconds"].as_u64().unwrap() >= 1);

    let held = app.await_queue_status(&event, &queues[1], 10);
    tokio::pin!(held);
    assert!(tokio::time::timeout(STILL_HELD, &mut held).await.is_err());
    let past_the_limit = app.await_queue_status(&event, &queues[2], 10).await;
    assert_eq!(past_the_limit.body["state"], "waiting");
    assert_eq!(applied(&past_the_limit), None, "one held request at most");

    app.components.tickets.stop_waiting();
    let answer = held.await;
    assert_eq!(answer.body["state"], "waiting", "{}", answer.text);
    assert_eq!(answer.body["position"], 1);
    assert_eq!(applied(&answer), Some("wait=10"));
    let after = app.await_queue_status(&event, &queues[1], 10).await;
    assert_eq!(
        applied(&after),
        None,
        "a server shutting down holds nothing"
    );
}

/// The scheduler admits once a minute here, so only the slot a departing fan frees can
/// let the next fan in while its request is held.
async fn a_freed_slot_brings_the_next_admission_forward(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tickets.admission_interval_ms = 60_000).await;
    let first = app.register("first@example.com").await;
    let second = app.register("second@example.com").await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 1, 600))
        .await;
    let first_queue = app.join(&first, &event).await;
    let second_queue = app.join(&second, &event).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(app.components.tickets.clone().run_admissions(stop.clone()));
    let admitted = app.await_queue_status(&event, &first_queue, WAIT).await;
    assert_eq!(admitted.body["state"], "active", "{}", admitted.text);

    let held = app.await_queue_status(&event, &second_queue, WAIT);
    tokio::pin!(held);
    assert!(tokio::time::timeout(STILL_HELD, &mut held).await.is_err());
    let left = app.leave(&first, &event).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text);
    let answer = tokio::time::timeout(WELL_BEFORE_THE_WAIT_ENDS, held)
        .await
        .expect("admitted by a round the freed slot brought forward");
    assert_eq!(answer.body["state"], "active", "{}", answer.text);
    stop.cancel();
    scheduler.await.unwrap();
}

/// A fan held by one node hears of an admission made by the other node's scheduler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_status_hears_of_another_nodes_admission() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let a = spawn_app(backend).await;
    let b = a.spawn_peer().await;
    let first = a.register("first@example.com").await;
    let second = a.register("second@example.com").await;
    let (event, queues) = one_at_a_time(&a, &[&first, &second]).await;

    let held = b.await_queue_status(&event, &queues[1], WAIT);
    tokio::pin!(held);
    assert!(tokio::time::timeout(STILL_HELD, &mut held).await.is_err());
    let left = a.leave(&first, &event).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text);
    assert_eq!(
        a.components.tickets.admit_next_batch(&event).await.unwrap(),
        1
    );
    let answer = tokio::time::timeout(WELL_BEFORE_THE_WAIT_ENDS, held)
        .await
        .expect("answered on admission");
    assert_eq!(answer.body["state"], "active", "{}", answer.text);
    assert_eq!(applied(&answer), Some("wait=20"));
}
