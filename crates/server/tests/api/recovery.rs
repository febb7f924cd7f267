//! The recovery sweep settles orders a crash left `pending_payment`.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Backend, one_line, spawn_app_with};

crate::backend_tests!(pending_orders_are_paid_or_released);

async fn pending_orders_are_paid_or_released(backend: Backend) {
    // A charge that never returns within the request's time limit: the request is cut off
    // after the order is committed and before the payment is recorded, as in a crash.
    let app = spawn_app_with(backend, |s| {
        s.http.request_timeout_seconds = 1;
        s.tickets.max_queue_wait_seconds = 0;
        s.payments.slow_latency_ms = 60_000;
    })
    .await;
    let tee = app.create_product("TEE", 1_000, 10).await;
    let me = app.register("crash@example.com").await;
    let mut numbers = Vec::new();
    for key in ["crash-1", "crash-2"] {
        let body = one_line("tok_slow", &tee, 2);
        let res = app.order_with_key(&me, body, key).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.text);
        let listed = app.get("/orders", Some(&me)).await;
        numbers.push(
            listed.body["items"][0]["number"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(app.available(&tee).await, 6);
    for number in &numbers {
        let order = app.get(&format!("/orders/{number}"), Some(&me)).await;
        assert_eq!(order.body["status"], "pending_payment");
    }

    // The first order's charge did reach the gateway before the crash.
    let charge_key: String = sqlx::query_scalar("SELECT charge_key FROM orders WHERE number = $1")
        .bind(&numbers[0])
        .fetch_one(app.components.db.reader())
        .await
        .unwrap();
    app.charge_gateway(&charge_key, 2_200).await;

    // Within the grace period nothing is touched.
    assert_eq!(
        app.components.shop.recover_pending_orders().await.unwrap(),
        0
    );
    app.clock.advance(Duration::from_secs(
        app.components.shop.settings().recovery_grace_seconds + 1,
    ));
    assert_eq!(
        app.components.shop.recover_pending_orders().await.unwrap(),
        2
    );

    let paid = app.get(&format!("/orders/{}", numbers[0]), Some(&me)).await;
    assert_eq!(paid.body["status"], "paid");
    let released = app.get(&format!("/orders/{}", numbers[1]), Some(&me)).await;
    assert_eq!(released.body["status"], "payment_failed");
    assert_eq!(
        app.available(&tee).await,
        8,
        "only the released order's units came back"
    );
    assert_eq!(
        app.components.shop.recover_pending_orders().await.unwrap(),
        0
    );

    // The interrupted requests' keys now replay the final answers.
    let body = one_line("tok_slow", &tee, 2);
    let replay = app.order_with_key(&me, body.clone(), "crash-1").await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body["number"], numbers[0].as_str());
    let replay = app.order_with_key(&me, body, "crash-2").await;
    assert_eq!(replay.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(app.available(&tee).await, 8);

    // A late charge with the released order's key can no longer succeed.
    let late_key: String = sqlx::query_scalar("SELECT charge_key FROM orders WHERE number = $1")
        .bind(&numbers[1])
        .fetch_one(app.components.db.reader())
        .await
        .unwrap();
    let late = app.charge_gateway(&late_key, 2_200).await;
    assert!(matches!(
        late,
        matsuri_payments::ChargeOutcome::Declined { .. }
    ));

    // The released units can be bought again: the sweep gave them back to the
    // allocation store.
    let all = app
        .order_with_key(&me, one_line("tok_visa", &tee, 8), "after-sweep")
        .await;
    assert_eq!(all.status, StatusCode::CREATED, "{}", all.text);
    assert_eq!(app.available(&tee).await, 0);
}
