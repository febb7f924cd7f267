//! Time, moved by the injected clock: holds and access tokens end and free their seat or
//! slot; the pre-queue is shuffled once when the sale opens.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{card_payment, event_body, wallet_payment};
use crate::helpers::{Backend, TestApp, spawn_app};

crate::coord_backend_tests!(
    holds_expire_and_free_their_seats,
    access_tokens_expire_and_purchases_free_slots,
    the_pre_queue_is_shuffled_once_at_sale_start,
    the_sweeper_settles_card_payments_a_crash_left_charging,
    a_payment_key_a_crash_left_waiting_is_answered_or_freed_by_the_sweeper,
);

async fn holds_expire_and_free_their_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 5_000)], 10, 60))
        .await;
    let seats = app.seat_ids(&event).await;
    let late = app.register("late@example.com").await;
    let next = app.register("next@example.com").await;
    let late_access = app.admitted(&late, &event).await;
    let next_access = app.admitted(&next, &event).await;
    app.charge(&late, 10_000).await;
    let held = app
        .hold(&late, &late_access, &event, &[&seats[0], &seats[1]])
        .await;
    let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();

    app.clock.advance(Duration::from_secs(61));
    let shown = app
        .get(&format!("/reservations/{reservation}"), Some(&late))
        .await;
    assert_eq!(shown.body["status"], "expired");
    assert!(
        app.seat_statuses(&event)
            .await
            .values()
            .all(|s| s == "available")
    );
    for body in [wallet_payment(), card_payment("tok_visa")] {
        let paid = app.pay(&late, &reservation, body, None).await;
        assert_eq!(paid.status, StatusCode::GONE, "{}", paid.text);
        assert_eq!(paid.code(), "reservation_expired");
    }
    assert_eq!(
        app.wallet(&late).await,
        json!({"balance": 10_000, "charged_total": 10_000, "paid_total": 0}),
        "nothing was charged"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges").await,
        0
    );

    // Someone else may take an ended hold's seat before the sweeper comes by.
    let taken = app.hold(&next, &next_access, &event, &[&seats[0]]).await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text);
    let swept = app.components.tickets.sweep().await.unwrap();
    assert_eq!(swept.expired_holds, 1);
    assert_eq!(swept.released_seats, 1, "only the seat nobody took since");
    let statuses = app.seat_statuses(&event).await;
    assert_eq!(statuses[&seats[0]], "held");
    assert_eq!(statuses[&seats[1]], "available");
    // An ended hold no longer counts against its holder's one live hold.
    let again = app.hold(&late, &late_access, &event, &[&seats[2]]).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let nothing = app.components.tickets.sweep().await.unwrap();
    assert_eq!(nothing.expired_holds, 0);
    let taken_reservation = taken.body["reservation_id"].as_str().unwrap();
    let paid = app
        .pay(&next, taken_reservation, card_payment("tok_visa"), None)
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
}

async fn access_tokens_expire_and_purchases_free_slots(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 10, 1_000)], 1, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let tickets = &app.components.tickets;
    let first = app.register("slot1@example.com").await;
    let second = app.register("slot2@example.com").await;
    let third = app.register("slot3@example.com").await;
    let first_access = app.admitted(&first, &event).await;
    let second_queue = app.join(&second, &event).await;
    assert_eq!(
        tickets.admit_next_batch(&event).await.unwrap(),
        0,
        "the one slot is taken"
    );

    // A purchase frees the slot at once.
    app.charge(&first, 1_000).await;
    let held = app.hold(&first, &first_access, &event, &[&seats[0]]).await;
    let paid = app
        .pay(
            &first,
            held.body["reservation_id"].as_str().unwrap(),
            wallet_payment(),
            None,
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 1);
    let status = app.queue_status(&event, &second_queue).await;
    assert_eq!(status.body["state"], "active", "{}", status.text);
    let second_access = status.body["access_token"].as_str().unwrap().to_owned();

    // An unused access token expires, and its slot goes to the next in line.
    let third_queue = app.join(&third, &event).await;
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 0);
    app.clock.advance(Duration::from_secs(601));
    let expired = app
        .hold(&second, &second_access, &event, &[&seats[1]])
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{}", expired.text);
    assert_eq!(expired.code(), "access_token_invalid");
    assert_eq!(
        app.queue_status(&event, &second_queue).await.body["state"],
        "expired"
    );
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 1);
    let third_status = app.queue_status(&event, &third_queue).await;
    assert_eq!(third_status.body["state"], "active");
    let third_access = third_status.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Leaving hands the slot on at once; leaving the queue while waiting takes the place.
    let fourth = app.register("slot4@example.com").await;
    let fifth = app.register("slot5@example.com").await;
    let fourth_queue = app.join(&fourth, &event).await;
    let fifth_queue = app.join(&fifth, &event).await;
    assert_eq!(
        app.leave(&fourth, &event).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.queue_status(&event, &fourth_queue).await.body["state"],
        "expired"
    );
    assert_eq!(
        app.queue_status(&event, &fifth_queue).await.body["position"],
        1
    );
    assert_eq!(
        app.leave(&third, &event).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = app.hold(&third, &third_access, &event, &[&seats[1]]).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text);
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 1);
    assert_eq!(
        app.queue_status(&event, &fifth_queue).await.body["state"],
        "active"
    );
}

async fn the_pre_queue_is_shuffled_once_at_sale_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let opens =
        matsuri_core::timefmt::rfc3339(matsuri_core::Clock::now_ms(app.clock.as_ref()) + 3_600_000);
    let mut body = event_body(&[("A", 1, 10, 1_000)], 20, 600);
    body["sale_starts_at"] = json!(opens);
    let event = app.create_event(body).await;
    let seats = app.seat_ids(&event).await;
    let tickets = &app.components.tickets;

    let mut early = Vec::new();
    for i in 0..20 {
        let fan = app.register(&format!("early{i}@example.com")).await;
        let res = app
            .request(
                reqwest::Method::POST,
                &format!("/events/{event}/queue"),
                Some(&fan),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        assert_eq!(res.body["position"], 0, "no place is shown before the sale");
        assert!(res.body["estimated_wait_seconds"].as_u64().unwrap() >= 3_590);
        early.push((fan, res.body["queue_token"].as_str().unwrap().to_owned()));
    }
    let status = app.queue_status(&event, &early[0].1).await;
    assert_eq!(status.body["state"], "waiting");
    assert!(status.body.get("position").is_none(), "{}", status.text);
    let closed = app.hold(&early[0].0, "none", &event, &[&seats[0]]).await;
    assert_eq!(closed.code(), "sale_closed");
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 0);

    app.clock.advance(Duration::from_secs(3_601));
    let mut late = Vec::new();
    for i in 0..5 {
        let fan = app.register(&format!("late{i}@example.com")).await;
        late.push(app.join(&fan, &event).await);
    }
    let mut early_positions = Vec::new();
    for (_, queue_token) in &early {
        let status = app.queue_status(&event, queue_token).await;
        early_positions.push(status.body["position"].as_u64().unwrap());
    }
    let mut sorted = early_positions.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=20).collect::<Vec<u64>>(),
        "the pre-queue comes first"
    );
    assert_ne!(
        early_positions, sorted,
        "and in a shuffled order, not by arrival"
    );
    for (i, queue_token) in late.iter().enumerate() {
        let status = app.queue_status(&event, queue_token).await;
        assert_eq!(
            status.body["position"],
            21 + i as u64,
            "then first come, first served"
        );
    }
    assert_eq!(tickets.admit_next_batch(&event).await.unwrap(), 20);
    for (_, queue_token) in &early {
        assert_eq!(
            app.queue_status(&event, queue_token).await.body["state"],
            "active"
        );
    }
    assert_eq!(app.queue_status(&event, &late[0]).await.body["position"], 1);
}

/// Leaves a hold as a crash between starting a card charge and recording its answer
/// would: marked charging with `charge_key`. Returns the hold's amount.
async fn crash_mid_charge(app: &TestApp, reservation: &str, charge_key: &str) -> i64 {
    let now = matsuri_core::Clock::now_ms(app.clock.as_ref());
    sqlx::query_scalar(
        "UPDATE reservations SET charge_key = $2, charging_since = $3 WHERE id = $1 RETURNING amount",
    )
    .bind(reservation)
    .bind(charge_key)
    .bind(now)
    .fetch_one(app.components.db.writer())
    .await
    .unwrap()
}

async fn the_sweeper_settles_card_payments_a_crash_left_charging(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 6_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let charged = app.register("charged@example.com").await;
    let never = app.register("never@example.com").await;
    let charged_access = app.admitted(&charged, &event).await;
    let never_access = app.admitted(&never, &event).await;
    let first = app
        .hold(&charged, &charged_access, &event, &[&seats[0]])
        .await;
    let second = app.hold(&never, &never_access, &event, &[&seats[1]]).await;
    let first = first.body["reservation_id"].as_str().unwrap().to_owned();
    let second = second.body["reservation_id"].as_str().unwrap().to_owned();

    // The first crash happened after the gateway approved; the second before it was asked.
    let amount = crash_mid_charge(&app, &first, "crash-approved").await;
    approve(&app, "crash-approved", amount).await;
    crash_mid_charge(&app, &second, "crash-never-charged").await;

    let busy = app.pay(&never, &second, wallet_payment(), None).await;
    assert_eq!(busy.code(), "payment_in_progress");
    let early = app.components.tickets.sweep().await.unwrap();
    assert_eq!(early.settled_charges, 0, "a charge may still be under way");

    app.clock.advance(Duration::from_secs(61));
    let swept = app.components.tickets.sweep().await.unwrap();
    assert_eq!(swept.settled_charges, 2);
    let paid = app
        .get(&format!("/reservations/{first}"), Some(&charged))
        .await;
    assert_eq!(paid.body["status"], "paid", "{}", paid.text);
    assert_eq!(
        app.get("/tickets", Some(&charged)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let statuses = app.seat_statuses(&event).await;
    assert_eq!(statuses[&seats[0]], "sold");
    assert_eq!(
        statuses[&seats[1]], "held",
        "the uncharged hold goes on until it ends"
    );
    // The gateway voided the key nobody charged: a late charge with it cannot succeed.
    let late = app.charge_gateway("crash-never-charged", 6_000).await;
    assert!(matches!(
        late,
        matsuri_payments::ChargeOutcome::Declined { .. }
    ));
    let retry = app
        .pay(&never, &second, card_payment("tok_visa"), None)
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
}

/// Leaves what a card payment sent with `key` leaves when its request dies after starting
/// the charge: the key claimed and tied to the hold, no answer stored, the hold charging.
async fn crash_mid_keyed_charge(
    app: &TestApp,
    token: &str,
    reservation: &str,
    key: &str,
    charge_key: &str,
) -> i64 {
    let user_id = app.get("/me", Some(token)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What the payment route fingerprints: the reservation, the method and the card.
    let print = matsuri_db::fingerprint(
        &serde_json::to_vec(&(reservation, "card", Some("tok_visa"))).unwrap(),
    );
    let store = app.components.tickets.idempotency();
    let claimed = store
        .claim_or_wait(&user_id, "ticket-payment", key, &print, Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(claimed, matsuri_db::KeyState::Claimed));
    let mut tx = app.components.db.begin().await.unwrap();
    matsuri_db::KeyLink {
        user_id: &user_id,
        scope: "ticket-payment",
        key,
    }
    .link(&mut tx, reservation)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    crash_mid_charge(app, reservation, charge_key).await
}

async fn approve(app: &TestApp, charge_key: &str, amount: i64) {
    let approved = app.charge_gateway(charge_key, amount).await;
    assert!(matches!(
        approved,
        matsuri_payments::ChargeOutcome::Approved { .. }
    ));
}

/// The sweeper settles a charge whose request is gone, and the `Idempotency-Key` that
/// request held gets what the request would have answered: the purchase when the charge
/// went through, 410 when it went through but the seats were gone (and was refunded), and
/// when nothing was charged the key is free again, so sending it once more pays.
async fn a_payment_key_a_crash_left_waiting_is_answered_or_freed_by_the_sweeper(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 6_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let mut fans = Vec::new();
    for (i, seat) in seats.iter().take(3).enumerate() {
        let fan = app.register(&format!("crashed-{i}@example.com")).await;
        let access = app.admitted(&fan, &event).await;
        let held = app.hold(&fan, &access, &event, &[seat]).await;
        let reservation = held.body["reservation_id"].as_str().unwrap().to_owned();
        fans.push((fan, reservation));
    }
    let [(paid_fan, paid), (never_fan, never), (gone_fan, gone)] = &fans[..] else {
        unreachable!()
    };
    let amount =
        crash_mid_keyed_charge(&app, paid_fan, paid, "key-approved", "charge-approved").await;
    approve(&app, "charge-approved", amount).await;
    crash_mid_keyed_charge(&app, never_fan, never, "key-never", "charge-never").await;
    let amount = crash_mid_keyed_charge(&app, gone_fan, gone, "key-gone", "charge-gone").await;
    approve(&app, "charge-gone", amount).await;
    // The third hold's seat went to someone else meanwhile.
    sqlx::query(
        "UPDATE seats SET reservation_id = NULL, status = 'available' WHERE reservation_id = $1",
    )
    .bind(gone)
    .execute(app.components.db.writer())
    .await
    .unwrap();

    app.clock.advance(Duration::from_secs(61));
    let swept = app.components.tickets.sweep().await.unwrap();
    assert_eq!(swept.settled_charges, 3);

    let replay = app
        .pay(
            paid_fan,
            paid,
            card_payment("tok_visa"),
            Some("key-approved"),
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED, "{}", replay.text);
    let tickets = app.get("/tickets", Some(paid_fan)).await;
    assert_eq!(
        replay.body["tickets"][0]["id"], tickets.body["items"][0]["id"],
        "the purchase the charge paid for"
    );

    let again = app
        .pay(
            never_fan,
            never,
            card_payment("tok_visa"),
            Some("key-never"),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(
        app.get("/tickets", Some(never_fan)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let refunded = app
        .pay(gone_fan, gone, card_payment("tok_visa"), Some("key-gone"))
        .await;
    assert_eq!(refunded.status, StatusCode::GONE, "{}", refunded.text);
    assert_eq!(refunded.code(), "reservation_expired");
    assert!(
        app.get("/tickets", Some(gone_fan)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
