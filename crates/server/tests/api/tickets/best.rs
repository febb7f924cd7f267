//! Best available (api.md, "Tickets, second round"): `{quantity, section?}` holds the
//! first block of seats side by side in one row, rows in order, sections in the event's
//! order; 500 such holds racing on 300 seats never share a seat and every refusal is a
//! clean 409.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::event_body;
use crate::helpers::{Answer, Backend, TestApp, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    the_best_block_comes_first_in_event_order,
    best_available_asks_are_checked,
    five_hundred_best_holds_on_three_hundred_seats,
);

impl TestApp {
    pub async fn hold_best(&self, token: &str, access: &str, event: &str, body: Value) -> Answer {
        self.request_with(
            Method::POST,
            &format!("/events/{event}/reservations"),
            Some(token),
            Some(body),
            &[("X-Access-Token", access)],
        )
        .await
    }

    /// Each seat's `(section, row, number)`, by id.
    async fn seat_places(&self, event: &str) -> HashMap<String, (String, i64, i64)> {
        self.seat_items(event)
            .await
            .iter()
            .map(|s| {
                let place = (
                    s["section"].as_str().unwrap().to_owned(),
                    s["row"].as_i64().unwrap(),
                    s["number"].as_i64().unwrap(),
                );
                (s["id"].as_str().unwrap().to_owned(), place)
            })
            .collect()
    }
}

/// The places of a hold's seats, in seat order.
fn places_of(
    answer: &Answer,
    places: &HashMap<String, (String, i64, i64)>,
) -> Vec<(String, i64, i64)> {
    let mut got: Vec<(String, i64, i64)> = answer.body["seat_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| places[id.as_str().unwrap()].clone())
        .collect();
    got.sort();
    got
}

fn place(section: &str, row: i64, number: i64) -> (String, i64, i64) {
    (section.to_owned(), row, number)
}

async fn the_best_block_comes_first_in_event_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(
            &[("A", 2, 4, 9_000), ("B", 1, 4, 5_000)],
            10,
            600,
        ))
        .await;
    if app.components.db.dialect() == matsuri_db::Dialect::Postgres {
        // The planner has counted the new event's seats: with the statistics of an empty
        // table it would run the block search over every free seat before sorting.
        let counted: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'seats'")
                .fetch_one(app.components.db.reader())
                .await
                .unwrap();
        assert_eq!(counted, 12.0);
    }
    let places = app.seat_places(&event).await;
    let fans = app.register_crowd("best", 4).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fan_tokens).await;

    let first = app
        .hold_best(&fans[0], &access[0], &event, json!({"quantity": 3}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(
        places_of(&first, &places),
        [place("A", 1, 1), place("A", 1, 2), place("A", 1, 3)]
    );
    assert_eq!(first.body["amount"], 27_000);
    assert_eq!(first.body["status"], "held");

    let second = app
        .hold_best(&fans[1], &access[1], &event, json!({"quantity": 2}))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(
        places_of(&second, &places),
        [place("A", 2, 1), place("A", 2, 2)],
        "one seat left in row 1 is no pair: the next row"
    );

    let third = app
        .hold_best(
            &fans[2],
            &access[2],
            &event,
            json!({"quantity": 2, "section": "B"}),
        )
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.text);
    assert_eq!(
        places_of(&third, &places),
        [place("B", 1, 1), place("B", 1, 2)]
    );

    let fourth = app
        .hold_best(&fans[3], &access[3], &event, json!({"quantity": 4}))
        .await;
    assert_eq!(fourth.status, StatusCode::CONFLICT, "{}", fourth.text);
    assert_eq!(fourth.code(), "seat_unavailable");
    let statuses = app.seat_statuses(&event).await;
    let held = statuses.values().filter(|s| *s == "held").count();
    assert_eq!(held, 7, "the refused hold took nothing");

    let reservation = app
        .get(
            &format!(
                "/reservations/{}",
                first.body["reservation_id"].as_str().unwrap()
            ),
            Some(&fans[0]),
        )
        .await;
    assert_eq!(reservation.body["seat_ids"], first.body["seat_ids"]);
}

async fn best_available_asks_are_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 10, 600))
        .await;
    let fan = app.register("fan@best.test").await;
    let access = app.admitted(&fan, &event).await;
    for (body, status, field) in [
        (
            json!({"quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        (
            json!({"quantity": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        (
            json!({"quantity": 2, "section": "Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("section"),
        ),
        (json!({"quantity": "two"}), StatusCode::BAD_REQUEST, None),
        (
            json!({"quantity": 1, "seat_ids": []}),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (json!({}), StatusCode::BAD_REQUEST, None),
    ] {
        let answer = app.hold_best(&fan, &access, &event, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        if let Some(field) = field {
            assert_eq!(answer.body["errors"][0]["field"], field, "{}", answer.text);
        }
    }
    let stranger = app.register("stranger@best.test").await;
    let refused = app
        .hold_best(&stranger, "not-a-token", &event, json!({"quantity": 0}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "who may hold comes before the body: {}",
        refused.text
    );
    let statuses = app.seat_statuses(&event).await;
    assert!(statuses.values().all(|s| s == "available"));
}

/// 100 fans, five holds each at once, of 1 to 4 seats, on 15 rows of 20.
async fn five_hundred_best_holds_on_three_hundred_seats(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.tickets.max_holds_per_admission = 5;
    })
    .await;
    let event = app
        .create_event(event_body(&[("A", 15, 20, 1_000)], 1_000, 600))
        .await;
    let places = app.seat_places(&event).await;
    let fans = app.register_crowd("crowd", 100).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fan_tokens).await;

    let answers = futures::future::join_all((0..500).map(|i| {
        let (app, event) = (&app, &event);
        let (fan, access) = (&fans[i % 100], &access[i % 100]);
        let quantity = 1 + (i * 7) % 4;
        async move {
            let answer = app
                .hold_best(fan, access, event, json!({"quantity": quantity}))
                .await;
            (quantity, answer)
        }
    }))
    .await;

    let mut seen = HashSet::new();
    let mut held_seats = 0;
    let mut refused = 0;
    for (quantity, answer) in &answers {
        match answer.status {
            StatusCode::CREATED => {
                let got = places_of(answer, &places);
                assert_eq!(got.len(), *quantity, "{}", answer.text);
                let (section, row, first) = got[0].clone();
                for (k, seat) in got.iter().enumerate() {
                    assert_eq!(
                        seat,
                        &(section.clone(), row, first + i64::try_from(k).unwrap()),
                        "side by side in one row: {got:?}"
                    );
                }
                for id in answer.body["seat_ids"].as_array().unwrap() {
                    assert!(seen.insert(id.as_str().unwrap().to_owned()), "a seat twice");
                }
                assert_eq!(answer.body["amount"], 1_000 * *quantity as i64);
                held_seats += quantity;
            }
            StatusCode::CONFLICT => {
                assert_eq!(answer.code(), "seat_unavailable", "{}", answer.text);
                refused += 1;
            }
            other => panic!("{other}: {}", answer.text),
        }
    }
    assert!(refused > 0, "500 asks for 1,250 seats cannot all be met");
    let rows = app
        .count("SELECT COUNT(*) FROM seats WHERE status = 'held'")
        .await;
    assert_eq!(rows, i64::try_from(held_seats).unwrap());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM reservations WHERE status = 'held'")
            .await,
        i64::try_from(answers.len() - refused).unwrap()
    );
    let free = app.listed_seats(&event, "?status=available").await;
    assert_eq!(free.len() + held_seats, 300);
}
