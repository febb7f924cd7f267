//! A fan's purchase from queue to gate, and every way it can be refused.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{card_payment, event_body, wallet_payment};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    a_fan_buys_with_the_wallet_and_gets_a_scannable_ticket,
    declined_or_failed_cards_keep_the_hold,
    one_payment_at_a_time,
    access_is_checked_on_every_hold,
    payments_replay_and_stay_private,
    cancelling_a_hold_releases_its_seats,
    bad_input_changes_nothing,
);

/// Runs the bus until it has nothing left to do.
async fn drain_bus(app: &crate::helpers::TestApp) {
    for _ in 0..10 {
        if app.components.bus.run_once().await.unwrap() == 0 {
            break;
        }
    }
}

async fn a_fan_buys_with_the_wallet_and_gets_a_scannable_ticket(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 2, 5, 8_800)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    assert_eq!(seats.len(), 10);
    let fan = app.register("fan@example.com").await;
    let access = app.admitted(&fan, &event).await;
    assert_eq!(app.charge(&fan, 20_000).await, 20_000);

    let held = app
        .hold(&fan, &access, &event, &[&seats[0], &seats[1]])
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    assert_eq!(held.body["amount"], 17_600);
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();
    let statuses = app.seat_statuses(&event).await;
    assert_eq!(statuses[&seats[0]], "held");
    assert_eq!(statuses[&seats[2]], "available");
    let shown = app
        .get(&format!("/reservations/{reservation}"), Some(&fan))
        .await;
    assert_eq!(shown.body["status"], "held");

    let paid = app.pay(&fan, &reservation, wallet_payment(), None).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    let tickets = paid.body["tickets"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    let wallet = app.wallet(&fan).await;
    assert_eq!(
        wallet,
        json!({"balance": 2_400, "charged_total": 20_000, "paid_total": 17_600})
    );
    let statuses = app.seat_statuses(&event).await;
    assert_eq!(statuses[&seats[0]], "sold");
    assert_eq!(statuses[&seats[1]], "sold");
    let shown = app
        .get(&format!("/reservations/{reservation}"), Some(&fan))
        .await;
    assert_eq!(shown.body["status"], "paid");
    let mine = app.get("/tickets", Some(&fan)).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);

    // The purchase freed the fan's slot: the access token is spent.
    let again = app.hold(&fan, &access, &event, &[&seats[2]]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    assert_eq!(again.code(), "access_token_invalid");

    // The QR image, and the payload a gate scanner verifies offline with the public key.
    let ticket_id = tickets[0]["id"].as_str().unwrap();
    let qr = app
        .get(&format!("/tickets/{ticket_id}/qr.svg"), Some(&fan))
        .await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(qr.content_type, "image/svg+xml");
    assert!(
        qr.text.contains("<svg"),
        "{}",
        &qr.text[..qr.text.len().min(200)]
    );
    let payload = tickets[0]["qr_payload"].as_str().unwrap().to_owned();
    let jwks = app.get("/tickets/signing-key", None).await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(&payload, &key, &validation).unwrap();
    assert_eq!(claims.claims["sub"], ticket_id);
    assert_eq!(claims.claims["evt"], event.as_str());

    // At the gate: valid once, then already used; a forged payload is not valid.
    let staff = app.staff_token().await;
    let scan = |payload: String| {
        let (app, staff) = (&app, staff.clone());
        async move {
            app.post(
                "/admin/tickets/verify",
                Some(&staff),
                json!({"qr_payload": payload}),
            )
            .await
        }
    };
    let first = scan(payload.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["valid"], true);
    assert_eq!(first.body["already_used"], false);
    assert_eq!(first.body["ticket_id"], ticket_id);
    assert!(first.body["seat"].as_str().unwrap().starts_with("A 1-"));
    let second = scan(payload.clone()).await;
    assert_eq!(second.body["valid"], true);
    assert_eq!(second.body["already_used"], true);
    let mut forged = payload.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(scan(forged).await.body["valid"], false);
    assert_eq!(scan("garbage".into()).await.body["valid"], false);
    let by_fan = app
        .post(
            "/admin/tickets/verify",
            Some(&fan),
            json!({"qr_payload": payload}),
        )
        .await;
    assert_eq!(by_fan.status, StatusCode::FORBIDDEN);
    let shown = app.get(&format!("/tickets/{ticket_id}"), Some(&fan)).await;
    assert_eq!(shown.body["status"], "used");

    // ticket.purchased reaches the data platform export, once.
    drain_bus(&app).await;
    let export = std::fs::read_to_string(app.data_dir.join("exports/ticket-purchases.jsonl"))
        .expect("the export file");
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 1, "{export}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["purchase"]["reservation_id"], reservation.as_str());
    assert_eq!(line["purchase"]["amount"], 17_600);
}

async fn declined_or_failed_cards_keep_the_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fan = app.register("card@example.com").await;
    let access = app.admitted(&fan, &event).await;
    let held = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();

    let declined = app
        .pay(&fan, &reservation, card_payment("tok_declined"), None)
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.text
    );
    assert_eq!(declined.code(), "payment_declined");
    let failed = app
        .pay(&fan, &reservation, card_payment("tok_gateway_error"), None)
        .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
    assert_eq!(failed.code(), "payment_gateway_error");
    let shown = app
        .get(&format!("/reservations/{reservation}"), Some(&fan))
        .await;
    assert_eq!(shown.body["status"], "held");
    assert_eq!(app.seat_statuses(&event).await[&seats[0]], "held");

    let empty_wallet = app.pay(&fan, &reservation, wallet_payment(), None).await;
    assert_eq!(empty_wallet.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(empty_wallet.code(), "insufficient_balance");

    let paid = app
        .pay(&fan, &reservation, card_payment("tok_visa"), None)
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(paid.body["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(app.seat_statuses(&event).await[&seats[0]], "sold");
    let twice = app
        .pay(&fan, &reservation, card_payment("tok_visa"), None)
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.code(), "already_paid");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges WHERE status = 'approved'")
            .await,
        1,
        "one approved charge"
    );
}

/// While a card charge is with the gateway, a second payment of the same hold (by wallet
/// or another card) is refused, so a hold is never paid twice.
async fn one_payment_at_a_time(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.payments.slow_latency_ms = 3_000).await;
    let event = app
        .create_event(event_body(&[("A", 1, 2, 5_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fan = app.register("twice@example.com").await;
    let access = app.admitted(&fan, &event).await;
    app.charge(&fan, 5_000).await;
    let held = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();

    let slow = app.pay(&fan, &reservation, card_payment("tok_slow"), None);
    let second = async {
        // Wait until the card charge is under way (the gateway takes 3 s to answer).
        loop {
            let charging: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM reservations WHERE id = $1 AND charging_since IS NOT NULL",
            )
            .bind(&reservation)
            .fetch_one(app.components.db.reader())
            .await
            .unwrap();
            if charging == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let wallet = app.pay(&fan, &reservation, wallet_payment(), None).await;
        let card = app
            .pay(&fan, &reservation, card_payment("tok_visa"), None)
            .await;
        (wallet, card)
    };
    let (slow, (wallet, card)) = tokio::join!(slow, second);
    assert_eq!(slow.status, StatusCode::CREATED, "{}", slow.text);
    for refused in [wallet, card] {
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
        assert_eq!(refused.code(), "payment_in_progress");
    }
    assert_eq!(
        app.wallet(&fan).await["balance"],
        5_000,
        "the wallet was not debited"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);
}

async fn access_is_checked_on_every_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 10, 5_000)], 1, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let first = app.register("first@example.com").await;
    let waiting = app.register("waiting@example.com").await;
    let stranger = app.register("stranger@example.com").await;
    let access = app.admitted(&first, &event).await;

    let queue_token = app.join(&waiting, &event).await;
    let rejoin = app
        .request(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&waiting),
            None,
        )
        .await;
    assert_eq!(rejoin.status, StatusCode::OK);
    assert_eq!(rejoin.body["queue_token"], queue_token.as_str());
    assert_eq!(rejoin.body["position"], 1);
    app.components
        .tickets
        .admit_next_batch(&event)
        .await
        .unwrap();
    let status = app.queue_status(&event, &queue_token).await;
    assert_eq!(
        status.body["state"], "waiting",
        "max_active is 1: {}",
        status.text
    );
    assert_eq!(status.body["position"], 1);

    for token in [None, Some("not-a-token"), Some(access.as_str())] {
        let res = app
            .request_with(
                Method::POST,
                &format!("/events/{event}/reservations"),
                Some(&waiting),
                Some(json!({"seat_ids": [seats[0]]})),
                &token
                    .map(|t| ("X-Access-Token", t))
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{token:?}: {}", res.text);
        assert_eq!(res.code(), "not_admitted");
    }
    let res = app
        .hold(&stranger, "not-a-token", &event, &[&seats[0]])
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "access_token_invalid");
    let res = app.hold(&stranger, &access, &event, &[&seats[0]]).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "someone else's token");

    let forged = app.queue_status(&event, "forged.token.here").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.code(), "queue_token_invalid");
    let other_event = app
        .create_event(event_body(&[("B", 1, 1, 1_000)], 1, 600))
        .await;
    let wrong_event = app.queue_status(&other_event, &queue_token).await;
    assert_eq!(wrong_event.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM reservations").await,
        0,
        "no refused hold wrote anything"
    );
}

async fn payments_replay_and_stay_private(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 10, 3_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fan = app.register("replay@example.com").await;
    let other = app.register("other@example.com").await;
    let access = app.admitted(&fan, &event).await;
    app.charge(&fan, 30_000).await;

    let first = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    let reservation = first.body["reservation_id"].as_str().unwrap().to_owned();
    // Someone else's reservation does not exist for them.
    assert_eq!(
        app.get(&format!("/reservations/{reservation}"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.request(
            Method::DELETE,
            &format!("/reservations/{reservation}"),
            Some(&other),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let theirs = app.pay(&other, &reservation, wallet_payment(), None).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let a = app
        .pay(&fan, &reservation, wallet_payment(), Some("pay-1"))
        .await;
    let b = app
        .pay(&fan, &reservation, wallet_payment(), Some("pay-1"))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(
        (b.status, &b.text),
        (a.status, &a.text),
        "the same key replays"
    );
    let reused = app
        .pay(&fan, &reservation, card_payment("tok_visa"), Some("pay-1"))
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.code(), "idempotency_key_reused");
    let ticket = a.body["tickets"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/tickets/{ticket}"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/tickets/{ticket}/qr.svg"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The same key sent ten times at once: one purchase, ten identical answers. The
    // purchase spent the access token, so the fan queues again first.
    let access = app.admitted(&fan, &event).await;
    let second = app.hold(&fan, &access, &event, &[&seats[1]]).await;
    let reservation = second.body["reservation_id"].as_str().unwrap().to_owned();
    let answers = futures::future::join_all(
        (0..10).map(|_| app.pay(&fan, &reservation, wallet_payment(), Some("pay-2"))),
    )
    .await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(answer.text, answers[0].text);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 2);
    assert_eq!(app.wallet(&fan).await["balance"], 24_000);

    // Wallet charges replay too, and never charge twice.
    let charge = |key: &'static str, amount: i64| {
        let (app, fan) = (&app, fan.clone());
        async move {
            app.request_with(
                Method::POST,
                "/wallet/charge",
                Some(&fan),
                Some(json!({"amount": amount})),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let charged = futures::future::join_all((0..8).map(|_| charge("top-up", 1_000))).await;
    for answer in &charged {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["balance"], 25_000);
    }
    assert_eq!(
        charge("top-up", 2_000).await.code(),
        "idempotency_key_reused"
    );
    assert_eq!(app.wallet(&fan).await["charged_total"], 31_000);
}

async fn cancelling_a_hold_releases_its_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let fan = app.register("cancel@example.com").await;
    let access = app.admitted(&fan, &event).await;
    let held = app
        .hold(&fan, &access, &event, &[&seats[0], &seats[3]])
        .await;
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();
    // One live hold per admission: hoarding seats hold after hold is refused.
    let hoard = app.hold(&fan, &access, &event, &[&seats[1]]).await;
    assert_eq!(hoard.status, StatusCode::CONFLICT, "{}", hoard.text);
    assert_eq!(hoard.code(), "hold_limit_reached");
    assert_eq!(app.seat_statuses(&event).await[&seats[1]], "available");
    let cancelled = app
        .request(
            Method::DELETE,
            &format!("/reservations/{reservation}"),
            Some(&fan),
            None,
        )
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    let statuses = app.seat_statuses(&event).await;
    assert!(statuses.values().all(|s| s == "available"), "{statuses:?}");
    let shown = app
        .get(&format!("/reservations/{reservation}"), Some(&fan))
        .await;
    assert_eq!(shown.body["status"], "cancelled");
    let late = app
        .pay(&fan, &reservation, card_payment("tok_visa"), None)
        .await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(late.code(), "reservation_expired");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges").await,
        0,
        "nothing was charged"
    );
    let again = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "the seat can be held again"
    );
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let fan = app.register("bad@example.com").await;

    let mut bad_event = event_body(&[("A", 0, 5, -1)], 0, 5);
    bad_event["starts_at"] = json!("someday");
    let res = app.post("/admin/events", Some(&staff), bad_event).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    let fields: Vec<&str> = res.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "starts_at",
        "max_active",
        "hold_seconds",
        "sections[0].rows",
        "sections[0].price",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let huge = event_body(&[("A", 500, 500, 1_000)], 10, 600);
    assert_eq!(
        app.post("/admin/events", Some(&staff), huge).await.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "250,000 seats is over the limit"
    );
    let wrong_type = app
        .post(
            "/admin/events",
            Some(&staff),
            json!({"name": 5, "sections": "A"}),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.code(), "invalid_request");
    let by_fan = app
        .post(
            "/admin/events",
            Some(&fan),
            event_body(&[("A", 1, 1, 1)], 1, 600),
        )
        .await;
    assert_eq!(by_fan.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM ticket_events").await, 0);

    let event = app
        .create_event(event_body(&[("A", 1, 6, 5_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let access = app.admitted(&fan, &event).await;
    let unknown_seat = uuid::Uuid::now_v7().to_string();
    for (seat_ids, status) in [
        (json!([]), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(seats[..5]), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!([seats[0], seats[0]]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!(["A-12"]), StatusCode::UNPROCESSABLE_ENTITY),
        (json!([seats[0], unknown_seat]), StatusCode::CONFLICT),
        (json!("A-12"), StatusCode::BAD_REQUEST),
    ] {
        let res = app
            .request_with(
                Method::POST,
                &format!("/events/{event}/reservations"),
                Some(&fan),
                Some(json!({"seat_ids": seat_ids})),
                &[("X-Access-Token", &access)],
            )
            .await;
        assert_eq!(res.status, status, "{seat_ids}: {}", res.text);
    }
    assert!(
        app.seat_statuses(&event)
            .await
            .values()
            .all(|s| s == "available")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM reservations").await, 0);

    for amount in [json!(0), json!(-500), json!(1_000_000_000)] {
        let res = app
            .post("/wallet/charge", Some(&fan), json!({"amount": amount}))
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{amount}");
    }
    let res = app
        .post("/wallet/charge", Some(&fan), json!({"amount": "lots"}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.wallet(&fan).await["charged_total"], 0);

    let held = app.hold(&fan, &access, &event, &[&seats[0]]).await;
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();
    for body in [
        json!({"method": "cash"}),
        json!({"method": "card"}),
        json!({"method": "card", "card_token": ""}),
    ] {
        let res = app.pay(&fan, &reservation, body.clone(), None).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let no_such = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        app.get(&format!("/events/{no_such}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/events/{no_such}/seats"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let join = app
        .request(
            Method::POST,
            &format!("/events/{no_such}/queue"),
            Some(&fan),
            None,
        )
        .await;
    assert_eq!(join.status, StatusCode::NOT_FOUND);
    let filter = app
        .get(&format!("/events/{event}/seats?status=sold"), None)
        .await;
    assert_eq!(filter.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unauthenticated = app
        .post("/wallet/charge", None, json!({"amount": 100}))
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

/// Two nodes sharing PostgreSQL and Redis behave as one system: a fan queued on one node
/// is admitted by the other's scheduler, and a seat held on one is taken on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sell_as_one() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let a = spawn_app(backend).await;
    let b = a.spawn_peer().await;
    let event = a
        .create_event(event_body(&[("A", 1, 4, 5_000)], 10, 600))
        .await;
    let seats = b.seat_ids(&event).await;
    let first = a.register("node-a@example.com").await;
    let second = b.register("node-b@example.com").await;
    let first_queue = a.join(&first, &event).await;
    let second_queue = b.join(&second, &event).await;
    assert_eq!(
        b.components.tickets.admit_next_batch(&event).await.unwrap(),
        2,
        "one queue across the nodes"
    );
    let first_access = b.queue_status(&event, &first_queue).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_access = a.queue_status(&event, &second_queue).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let held = a.hold(&first, &first_access, &event, &[&seats[0]]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    let taken = b.hold(&second, &second_access, &event, &[&seats[0]]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert_eq!(taken.code(), "seat_unavailable");
    let paid = b
        .pay(
            &first,
            held.body["reservation_id"].as_str().unwrap(),
            card_payment("tok_visa"),
            None,
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(a.seat_statuses(&event).await[&seats[0]], "sold");
}
