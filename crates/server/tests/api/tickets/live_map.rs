//! The live seat map (api.md, "Tickets, second round"): a subscriber of `event:<id>`
//! (on another node when there can be one) hears of every hold, sale and release of a
//! 200-fan storm, gathered into `seats` frames, and the changes, each seat's latest by
//! version, end at the seat map's final state.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{event_body, wallet_payment};
use crate::chat::support::Ws;
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(a_subscriber_hears_every_change_of_a_storm);

async fn a_subscriber_hears_every_change_of_a_storm(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let peer = match backend {
        Backend::PostgresRedis(..) => Some(app.spawn_peer().await),
        _ => None,
    };
    let watching = peer.as_ref().unwrap_or(&app);
    let event = app
        .create_event(event_body(&[("A", 20, 20, 1_000)], 1_000, 600))
        .await;
    let watcher = app.register("watcher@map.test").await;
    let mut ws = Ws::connect(watching, &watcher).await;
    ws.send(json!({"type": "subscribe", "topic": format!("event:{event}")}))
        .await;
    let _ = ws.next_of("subscribed").await;

    let fans = app.register_crowd("storm", 200).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fan_tokens).await;
    let changes_made = futures::future::join_all(fans.iter().zip(&access).enumerate().map(
        |(i, (fan, access))| {
            let (app, event) = (&app, &event);
            async move {
                let held = app
                    .hold_best(fan, access, event, json!({"quantity": 1 + i % 2}))
                    .await;
                assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
                let seats = held.body["seat_ids"].as_array().unwrap().len();
                let reservation = held.body["reservation_id"].as_str().unwrap();
                match i % 3 {
                    0 => {
                        app.charge(fan, 2_000).await;
                        let paid = app.pay(fan, reservation, wallet_payment(), None).await;
                        assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
                        2 * seats
                    }
                    1 => {
                        let cancelled = app
                            .request(
                                Method::DELETE,
                                &format!("/reservations/{reservation}"),
                                Some(fan),
                                None,
                            )
                            .await;
                        assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
                        2 * seats
                    }
                    _ => seats,
                }
            }
        },
    ))
    .await;
    let expected: usize = changes_made.iter().sum();

    // Each seat's latest change, by version.
    let mut latest: HashMap<String, (i64, String)> = HashMap::new();
    let mut heard = 0;
    while heard < expected {
        let frame = ws.next_of("seats").await;
        assert_eq!(frame["event_id"], event.as_str());
        assert!(frame.get("resync").is_none(), "no change was dropped");
        for change in frame["changes"].as_array().unwrap() {
            heard += 1;
            let seat = change["seat_id"].as_str().unwrap().to_owned();
            let version = change["version"].as_i64().unwrap();
            let status = change["status"].as_str().unwrap().to_owned();
            let entry = latest.entry(seat).or_insert((version, status.clone()));
            if version >= entry.0 {
                *entry = (version, status);
            }
        }
    }
    assert_eq!(heard, expected, "every hold, sale and release, once");
    assert!(ws.drain().await.iter().all(|f| f["type"] != "seats"));

    let statuses = app.seat_statuses(&event).await;
    for (seat, status) in &statuses {
        let heard_of = latest.get(seat).map_or("available", |(_, s)| s.as_str());
        assert_eq!(heard_of, status, "seat {seat}");
    }
    let sold = statuses.values().filter(|s| *s == "sold").count();
    let held = statuses.values().filter(|s| *s == "held").count();
    assert!(sold > 0 && held > 0);
}
