//! The seat map: every seat with its status, or only the seats that can be held now;
//! under a rush one rendering of each serves every request for a short while.

use std::time::Duration;

use reqwest::StatusCode;

use super::{card_payment, event_body};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    the_available_filter_lists_only_seats_that_can_be_held,
    one_rendering_serves_the_seat_map_for_its_max_age,
);

async fn the_available_filter_lists_only_seats_that_can_be_held(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 5, 5_000)], 10, 60))
        .await;
    let seats = app.seat_ids(&event).await;
    let fans = app.register_crowd("fan", 3).await;
    let fans: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fans).await;

    let lapsed = app.hold(fans[0], &access[0], &event, &[&seats[0]]).await;
    assert_eq!(lapsed.status, StatusCode::CREATED, "{}", lapsed.text);
    app.clock.advance(Duration::from_secs(61));
    let held = app.hold(fans[1], &access[1], &event, &[&seats[1]]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    let sold = app.hold(fans[2], &access[2], &event, &[&seats[2]]).await;
    let reservation = sold.body["reservation_id"].as_str().unwrap();
    let paid = app
        .pay(fans[2], reservation, card_payment("tok_visa"), None)
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);

    assert_eq!(
        app.listed_seats(&event, "?status=available").await,
        [seats[0].clone(), seats[3].clone(), seats[4].clone()],
        "a lapsed hold's seat is free before the sweeper comes by; held and sold ones are not"
    );
    assert_eq!(
        app.listed_seats(&event, "").await,
        seats,
        "every seat, in map order"
    );
    let statuses = app.seat_statuses(&event).await;
    assert_eq!(statuses[&seats[0]], "available");
    assert_eq!(statuses[&seats[1]], "held");
    assert_eq!(statuses[&seats[2]], "sold");
}

async fn one_rendering_serves_the_seat_map_for_its_max_age(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tickets.seat_map_max_age_ms = 60_000).await;
    let event = app
        .create_event(event_body(&[("A", 1, 3, 5_000)], 10, 60))
        .await;
    let before = app.seat_statuses(&event).await;
    assert!(before.values().all(|s| s == "available"));
    let seats = app.seat_ids(&event).await;
    let fan = app.register("fan@example.com").await;
    let access = app.admitted(&fan, &event).await;
    let held = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);

    assert_eq!(
        app.seat_statuses(&event).await,
        before,
        "the map rendered before the hold is still served"
    );
    assert_eq!(
        app.listed_seats(&event, "?status=available").await,
        [seats[1].clone(), seats[2].clone()],
        "the free seats are a rendering of their own, made after the hold"
    );
}
