//! Sold out (api.md, "Tickets, second round"): once every seat is sold, joining and
//! asking the queue's status answer `sold_out` on every node, and the user is out of
//! the queue; while seats are only held, waiting users stay `waiting` and nobody is
//! admitted, and a lapsed hold lets admission go on.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::{event_body, wallet_payment};
use crate::helpers::{Backend, TestApp, spawn_app};

crate::coord_backend_tests!(
    selling_the_last_seat_tells_everyone_waiting,
    held_seats_pause_admission_until_a_hold_lapses,
);

/// Another node of the deployment where there can be one (Redis as `coord`); otherwise
/// none, and the test asks the only node.
async fn other_node(app: &TestApp, backend: &Backend) -> Option<TestApp> {
    match backend {
        Backend::PostgresRedis(..) => Some(app.spawn_peer().await),
        _ => None,
    }
}

async fn selling_the_last_seat_tells_everyone_waiting(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let peer = other_node(&app, &backend).await;
    let elsewhere = peer.as_ref().unwrap_or(&app);
    let event = app
        .create_event(event_body(&[("A", 1, 2, 5_000)], 1, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let buyer = app.register("buyer@sold.test").await;
    let late = app.register("late@sold.test").await;
    let access = app.admitted(&buyer, &event).await;
    let waiting = elsewhere.join(&late, &event).await;

    let hold = app
        .hold(&buyer, &access, &event, &[&seats[0], &seats[1]])
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.text);
    app.charge(&buyer, 10_000).await;
    let reservation = hold.body["reservation_id"].as_str().unwrap();
    let paid = app.pay(&buyer, reservation, wallet_payment(), None).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    let still = elsewhere.queue_status(&event, &waiting).await;
    assert_eq!(still.body["state"], "waiting", "no round has counted yet");

    let tickets = &app.components.tickets;
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 0);
    let told = elsewhere.queue_status(&event, &waiting).await;
    assert_eq!(told.status, StatusCode::OK, "{}", told.text);
    assert_eq!(told.body["state"], "sold_out", "{}", told.text);
    assert!(told.body.get("position").is_none());
    let again = app.queue_status(&event, &waiting).await;
    assert_eq!(
        again.body["state"], "sold_out",
        "the first node says so too"
    );
    let queued: i64 = app
        .components
        .coord
        .zcard(&format!("tq:{event}:queue"))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(queued, 0, "nobody is left in the queue");

    let newcomer = app.register("newcomer@sold.test").await;
    let joined = elsewhere
        .request(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&newcomer),
            None,
        )
        .await;
    assert!(joined.status.is_success(), "{}", joined.text);
    assert_eq!(joined.body["state"], "sold_out", "{}", joined.text);
    let held = elsewhere.await_queue_status(&event, &waiting, 5).await;
    assert_eq!(held.body["state"], "sold_out", "a held request is not held");
}

async fn held_seats_pause_admission_until_a_hold_lapses(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let peer = other_node(&app, &backend).await;
    let elsewhere = peer.as_ref().unwrap_or(&app);
    let event = app
        .create_event(event_body(&[("A", 1, 2, 5_000)], 1, 60))
        .await;
    let seats = app.seat_ids(&event).await;
    let holder = app.register("holder@pause.test").await;
    let next = app.register("next@pause.test").await;
    let access = app.admitted(&holder, &event).await;
    let hold = app
        .hold(&holder, &access, &event, &[&seats[0], &seats[1]])
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.text);
    // The holder's slot is handed on: only the seats stand in the way.
    let left = app.leave(&holder, &event).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text);
    let waiting = elsewhere.join(&next, &event).await;

    let tickets = &app.components.tickets;
    assert_eq!(
        tickets.admit_next_batch(&event).await.unwrap(),
        0,
        "every seat is held: admission pauses"
    );
    let paused = elsewhere.queue_status(&event, &waiting).await;
    assert_eq!(paused.body["state"], "waiting", "{}", paused.text);
    let wait = paused.body["estimated_wait_seconds"].as_u64().unwrap();
    assert!(
        (55..=62).contains(&wait),
        "the wait counts the hold's end, 60 s off: {wait}"
    );

    app.clock.advance(Duration::from_secs(61));
    assert_eq!(
        tickets.admit_next_batch(&event).await.unwrap(),
        1,
        "the lapsed hold's seats are free again"
    );
    let admitted = elsewhere.queue_status(&event, &waiting).await;
    assert_eq!(admitted.body["state"], "active", "{}", admitted.text);
}
