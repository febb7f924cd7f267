//! `Idempotency-Key` on `POST /orders`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, one_line, order_body, spawn_app};

crate::backend_tests!(
    twenty_concurrent_retries_make_one_order,
    a_reused_key_with_another_body_is_refused,
    refusals_are_replayed_too,
);

async fn twenty_concurrent_retries_make_one_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 2_000, 100).await;
    let me = app.register("retry@example.com").await;
    let body = one_line("tok_visa", &tee, 3);

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, me, body) = (&app, me.clone(), body.clone());
            async move { app.order_with_key(&me, body, "checkout-7f3a").await }
        })
        .collect();
    let answers = futures::future::join_all(tasks).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(answer.text, answers[0].text, "identical responses");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(app.available(&tee).await, 97);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges").await,
        1
    );

    // A declined answer is replayed too, and charges nothing again.
    let declined = one_line("tok_declined", &tee, 1);
    let first = app.order_with_key(&me, declined.clone(), "k2").await;
    let again = app.order_with_key(&me, declined, "k2").await;
    assert_eq!(first.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(first.text, again.text);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(app.available(&tee).await, 97);

    // Keys belong to their user: the same key from someone else is a new request.
    let other = app.register("other@example.com").await;
    let theirs = app.order_with_key(&other, body, "checkout-7f3a").await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.body["number"], answers[0].body["number"]);
}

async fn a_reused_key_with_another_body_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 2_000, 10).await;
    let me = app.register("reuse@example.com").await;
    let one = one_line("tok_visa", &tee, 1);
    let two = one_line("tok_visa", &tee, 2);
    let first = app.order_with_key(&me, one, "same").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = app.order_with_key(&me, two, "same").await;
    assert_eq!(second.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(second.code(), "idempotency_key_reused");
    assert_eq!(app.available(&tee).await, 9);
    let long = "k".repeat(300);
    let bad = app
        .order_with_key(&me, order_body("tok_visa", None), &long)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn refusals_are_replayed_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 2_000, 1).await;
    let me = app.register("refused@example.com").await;
    let body = one_line("tok_visa", &tee, 2);
    let post = |key: &'static str, body: serde_json::Value| {
        let (app, me) = (&app, me.clone());
        async move { app.order_with_key(&me, body, key).await }
    };
    let refused = post("short", body.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "out_of_stock");

    // Stock arrives, but the key still answers what it answered first.
    let staff = app.staff_token().await;
    app.request(
        Method::PUT,
        &format!("/admin/products/{tee}/stock"),
        Some(&staff),
        Some(json!({"stock": 5})),
    )
    .await;
    let again = post("short", body.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.text, refused.text);
    assert_eq!(app.available(&tee).await, 5);

    // A key that bought replays its order even once the stock is gone.
    let bought = post("bought", body.clone()).await;
    assert_eq!(bought.status, StatusCode::CREATED);
    app.request(
        Method::PUT,
        &format!("/admin/products/{tee}/stock"),
        Some(&staff),
        Some(json!({"stock": 0})),
    )
    .await;
    let replay = post("bought", body).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.text, bought.text);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
}
