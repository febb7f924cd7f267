//! Bad input gets the contract's error and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, order_body, spawn_app};

crate::backend_tests!(bad_orders_change_nothing, bad_bodies_are_problems);

async fn bad_orders_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 1_000, 10).await;
    let me = app.register("bad@example.com").await;
    let line = |q: serde_json::Value| {
        order_body(
            "tok_visa",
            Some(json!([{"product_id": tee, "quantity": q}])),
        )
    };

    for (body, status, code) in [
        (
            line(json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            line(json!(-3)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            line(json!(1_000_000)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            line(json!(1e30)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            line(json!("two")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (line(json!(1.5)), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            order_body("tok_visa", Some(json!([]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            order_body(
                "tok_visa",
                Some(
                    json!([{"product_id": tee, "quantity": 1}, {"product_id": tee, "quantity": 1}]),
                ),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            order_body(
                "tok_visa",
                Some(
                    json!([{"product_id": "0190f000-0000-7000-8000-000000000000", "quantity": 1}]),
                ),
            ),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            order_body(
                "tok_visa",
                Some(json!([{"product_id": "'; DROP TABLE products; --", "quantity": 1}])),
            ),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            json!({"payment": {"method": "card", "card_token": "tok_visa"}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"shipping_address": {"name": "", "postal_code": "1", "address": "x"}, "payment": {"method": "cash"}, "items": [{"product_id": tee, "quantity": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        let res = app.post("/orders", Some(&me), body.clone()).await;
        assert_eq!(res.status, status, "{body}: {}", res.text);
        assert_eq!(res.code(), code, "{body}");
        assert_eq!(res.content_type, "application/problem+json");
    }
    let res = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": tee, "quantity": -1}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": tee, "quantity": 101}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(app.available(&tee).await, 10);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM cart_items").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
}

async fn bad_bodies_are_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.register("bodies@example.com").await;
    let url = format!("{}/api/v1/orders", app.base);

    let malformed = app
        .http
        .post(&url)
        .bearer_auth(&me)
        .header("content-type", "application/json")
        .body("{\"shipping_address\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let problem: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request");

    let not_json = app
        .http
        .post(&url)
        .bearer_auth(&me)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // An array is no body of this API, even where every field is optional.
    let array = app
        .http
        .post(format!("{}/api/v1/notifications/read", app.base))
        .bearer_auth(&me)
        .header("content-type", "application/json; charset=utf-8")
        .body(" [null]")
        .send()
        .await
        .unwrap();
    assert_eq!(array.status(), StatusCode::BAD_REQUEST);
    let problem: serde_json::Value = array.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request");

    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let res = app
        .http
        .post(&url)
        .bearer_auth(&me)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "payload_too_large");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);
}
