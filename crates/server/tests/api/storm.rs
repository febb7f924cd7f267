//! The stampede: 400 buyers, 50 units.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, order_body, spawn_app};

crate::backend_tests!(four_hundred_buyers_fifty_units);

async fn four_hundred_buyers_fifty_units(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("FLASH", 5_000, 50).await;
    let tokens = futures::future::join_all((0..400).map(|i| {
        let app = &app;
        async move { app.register(&format!("buyer{i}@example.com")).await }
    }))
    .await;

    let body = order_body(
        "tok_visa",
        Some(json!([{"product_id": product, "quantity": 1}])),
    );
    let answers = futures::future::join_all(tokens.iter().map(|token| {
        let (app, body) = (&app, body.clone());
        async move { app.post("/orders", Some(token), body).await }
    }))
    .await;

    let paid: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT && a.code() == "out_of_stock")
        .count();
    assert_eq!(paid.len(), 50, "exactly the stock is sold");
    assert_eq!(refused, 350, "every other buyer is told it is out of stock");
    assert_eq!(app.available(&product).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE status = 'paid'")
            .await,
        50
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE status <> 'paid'")
            .await,
        0
    );
    let sold: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines")
            .fetch_one(app.components.db.reader())
            .await
            .unwrap();
    assert_eq!(sold, 50);
    let mut numbers: Vec<_> = paid
        .iter()
        .map(|a| a.body["number"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 50, "order numbers are unique");
}
