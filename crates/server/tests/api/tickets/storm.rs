//! Stampedes on seats and on one wallet.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{event_body, wallet_payment};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    five_hundred_fans_ten_seats,
    a_hundred_debits_on_one_wallet,
    a_hundred_charges_on_one_wallet
);

/// 500 admitted fans race for the same 10 seats, each asking for two of them at once
/// (all or none): every seat ends up held by exactly one reservation.
async fn five_hundred_fans_ten_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 10, 7_000)], 1_000, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fans = app.register_crowd("rush", 500).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fan_tokens).await;

    let answers = futures::future::join_all(fans.iter().zip(&access).enumerate().map(
        |(i, (fan, access))| {
            let wanted = [&seats[i % 10], &seats[(i + 3) % 10]];
            let app = &app;
            let event = &event;
            async move {
                (
                    wanted,
                    app.hold(
                        fan,
                        access,
                        event,
                        &[wanted[0].as_str(), wanted[1].as_str()],
                    )
                    .await,
                )
            }
        },
    ))
    .await;

    let mut holder: HashMap<String, String> = HashMap::new();
    let mut won = 0;
    for (wanted, answer) in &answers {
        match answer.status {
            StatusCode::CREATED => {
                won += 1;
                let reservation = answer.body["reservation_id"].as_str().unwrap();
                for seat in wanted {
                    let previous = holder.insert((*seat).clone(), reservation.to_owned());
                    assert!(previous.is_none(), "seat {seat} held twice");
                }
            }
            StatusCode::CONFLICT => assert_eq!(answer.code(), "seat_unavailable"),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(
        (1..=5).contains(&won),
        "{won} holds of two seats among ten seats"
    );
    let statuses = app.seat_statuses(&event).await;
    for (seat, status) in &statuses {
        assert_eq!(
            status == "held",
            holder.contains_key(seat),
            "seat {seat} shows {status}"
        );
    }
    assert_eq!(
        app.held_seats().await,
        holder,
        "the database agrees with the answers"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM reservations").await,
        i64::from(won)
    );
}

/// One fan with 100 holds pays for all of them at once from a wallet that covers 60:
/// exactly 60 are paid, the rest refused, and the balance never goes below zero.
async fn a_hundred_debits_on_one_wallet(backend: Backend) {
    // A node pays a user once per batch, and SQLite runs one write transaction at a time,
    // so debits never race there. On PostgreSQL the payments go through two nodes, whose
    // debits do race, and the losers of a version check must try again.
    let races = matches!(backend, Backend::PostgresRedis(..));
    let app = spawn_app_with(backend, |s| s.tickets.max_holds_per_admission = 100).await;
    let peer = if races {
        Some(app.spawn_peer().await)
    } else {
        None
    };
    let event = app
        .create_event(event_body(&[("A", 10, 10, 1_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fan = app.register("wallet@example.com").await;
    let access = app.admitted(&fan, &event).await;
    let mut reservations = Vec::new();
    for seat in &seats {
        let held = app.hold(&fan, &access, &event, &[seat]).await;
        assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
        reservations.push(held.body["reservation_id"].as_str().unwrap().to_owned());
    }
    app.charge(&fan, 60_000).await;

    let answers = futures::future::join_all(reservations.iter().enumerate().map(|(i, r)| {
        let node = match &peer {
            Some(peer) if i % 2 == 1 => peer,
            _ => &app,
        };
        node.pay(&fan, r, wallet_payment(), None)
    }))
    .await;
    let paid = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED
                || (answer.status == StatusCode::PAYMENT_REQUIRED
                    && answer.code() == "insufficient_balance"),
            "{}",
            answer.text
        );
    }
    assert_eq!(paid, 60);
    let wallet = app.wallet(&fan).await;
    assert_eq!(wallet["balance"], 0);
    assert_eq!(wallet["paid_total"], 60_000);
    assert_eq!(wallet["charged_total"], 60_000);
    let entries = app
        .count(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM wallet_entries WHERE kind = 'payment'",
        )
        .await;
    assert_eq!(entries, -60_000, "one payment entry per paid hold");
    let sold = app.sold_seats(&event).await;
    assert_eq!(sold.len(), 60);
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 60);
    if races {
        let metrics = app.get("/metrics", None).await.text;
        let conflicts: f64 = metrics
            .lines()
            .find(|l| l.starts_with("matsuri_wallet_version_conflicts_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(
            conflicts > 0.0,
            "100 debits through two nodes lost no version check"
        );
    }
}

/// 100 charges on one wallet at once, 40 of their keys sent twice, while another fan
/// charges without keys: every charge lands once, each answer is the wallet right after
/// its charge, and a key sent twice gets the same answer.
async fn a_hundred_charges_on_one_wallet(backend: Backend) {
    let app = spawn_app(backend).await;
    let fan = app.register("charges@example.com").await;
    let other = app.register("other@example.com").await;
    let keyed = (0..100).map(|i| {
        let (app, fan) = (&app, &fan);
        let j = i % 60;
        async move {
            let key = format!("top-up-{j}");
            let answer = app
                .request_with(
                    Method::POST,
                    "/wallet/charge",
                    Some(fan),
                    Some(json!({"amount": 100 + j})),
                    &[("Idempotency-Key", &key)],
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            (j, answer.body)
        }
    });
    let unkeyed = (0..50).map(|_| app.charge(&other, 10));
    let (answers, _) = futures::future::join(
        futures::future::join_all(keyed),
        futures::future::join_all(unkeyed),
    )
    .await;

    let expected: i64 = (0..60).map(|j| 100 + j).sum();
    let mut by_key: HashMap<i64, serde_json::Value> = HashMap::new();
    for (j, body) in answers {
        let first = by_key.entry(j).or_insert_with(|| body.clone());
        assert_eq!(*first, body, "key {j} answered alike");
    }
    // Every charge saw its own wallet: the balances after them are distinct and each
    // includes its own amount.
    let balances: HashSet<i64> = by_key
        .iter()
        .map(|(j, body)| {
            let balance = body["balance"].as_i64().unwrap();
            assert!(balance >= 100 + j && balance <= expected, "{body}");
            assert_eq!(body["charged_total"], balance, "{body}");
            balance
        })
        .collect();
    assert_eq!(balances.len(), 60);
    assert!(balances.contains(&expected));
    let wallet = app.wallet(&fan).await;
    assert_eq!(wallet["balance"], expected);
    assert_eq!(wallet["charged_total"], expected);
    assert_eq!(app.wallet(&other).await["balance"], 500);
    let (entries, sum): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM wallet_entries WHERE kind = 'charge'",
    )
    .fetch_one(app.components.db.reader())
    .await
    .unwrap();
    assert_eq!((entries, sum), (110, expected + 500));
}
