//! The cart: add, change, remove; stock is checked when adding.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, spawn_app};

crate::backend_tests!(cart_lines_add_up, cart_add_checks_stock_and_product);

async fn cart_lines_add_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 3500, 10).await;
    let towel = app.create_product("TOWEL", 2000, 10).await;
    let me = app.register("cart@example.com").await;

    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": tee, "quantity": 2}),
    )
    .await;
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": tee, "quantity": 1}),
    )
    .await;
    let cart = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": towel, "quantity": 1}),
        )
        .await;
    assert_eq!(cart.status, StatusCode::OK, "{}", cart.text);
    assert_eq!(cart.body["items"][0]["quantity"], 3);
    assert_eq!(cart.body["items"][0]["line_total"], 10_500);
    assert_eq!(cart.body["total"], 12_500);

    let patched = app
        .request(
            Method::PATCH,
            &format!("/cart/items/{tee}"),
            Some(&me),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(patched.body["total"], 5_500);
    let zero = app
        .request(
            Method::PATCH,
            &format!("/cart/items/{tee}"),
            Some(&me),
            Some(json!({"quantity": 0})),
        )
        .await;
    assert_eq!(zero.body["items"].as_array().unwrap().len(), 1);
    let removed = app
        .request(
            Method::DELETE,
            &format!("/cart/items/{towel}"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.body["total"], 0);

    // Another user's cart is their own.
    let other = app.register("other@example.com").await;
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": tee, "quantity": 1}),
    )
    .await;
    assert_eq!(
        app.get("/cart", Some(&other)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get("/cart", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn cart_add_checks_stock_and_product(backend: Backend) {
    let app = spawn_app(backend).await;
    let scarce = app.create_product("SCARCE", 1000, 2).await;
    let me = app.register("scarce@example.com").await;
    let res = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": scarce, "quantity": 3}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.code(), "out_of_stock");
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": scarce, "quantity": 2}),
    )
    .await;
    let more = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": scarce, "quantity": 1}),
        )
        .await;
    assert_eq!(more.code(), "out_of_stock");
    let unknown = app
        .post(
            "/cart/items",
            Some(&me),
            json!({"product_id": "0190f000-0000-7000-8000-000000000000", "quantity": 1}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "product_not_found");
    let patch_missing = app
        .request(
            Method::PATCH,
            "/cart/items/0190f000-0000-7000-8000-000000000000",
            Some(&me),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(patch_missing.status, StatusCode::NOT_FOUND);
    // The cart only records lines; stock is taken at checkout.
    assert_eq!(app.available(&scarce).await, 2);
}
