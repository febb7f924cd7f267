//! `/metrics` in a test binary of its own: the recorder is process-wide, and here no
//! other test shares the process, so every figure read is this test's doing and can be
//! checked exactly (the README's `cargo nextest` gives each test a process anyway; plain
//! `cargo test` does not).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use reqwest::StatusCode;
use serde_json::json;

use helpers::{Backend, order_body, spawn_app};

/// The value of the sample `name{labels}` in a Prometheus text page; 0 when absent.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_this_process_did() {
    let app = spawn_app(Backend::Sqlite).await;
    let before = app.get("/metrics", None).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.content_type.starts_with("text/plain"));
    let paid = "matsuri_checkout_total{outcome=\"paid\"}";
    let short = "matsuri_checkout_total{outcome=\"out_of_stock\"}";
    assert_eq!(sample(&before.text, paid), 0.0, "{}", before.text);

    let tee = app.create_product("TEE", 1_000, 1).await;
    let me = app.register("metrics@example.com").await;
    let items = Some(json!([{"product_id": tee, "quantity": 1}]));
    let first = app
        .post("/orders", Some(&me), order_body("tok_visa", items.clone()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = app
        .post("/orders", Some(&me), order_body("tok_visa", items))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);

    let after = app.get("/metrics", None).await.text;
    assert_eq!(sample(&after, paid), 1.0, "{after}");
    assert_eq!(sample(&after, short), 1.0, "{after}");
    let orders: f64 = after
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/api/v1/orders\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(orders, 2.0, "{after}");
    assert!(
        after.contains("http_request_duration_seconds_bucket"),
        "{after}"
    );
}
