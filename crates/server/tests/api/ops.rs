//! Health, readiness, request ids, the OpenAPI document and its docs page. (`/metrics`
//! has a test binary of its own, `tests/metrics.rs`.)

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, spawn_app};

crate::backend_tests!(
    health_ready_and_request_ids,
    openapi_and_docs_are_served,
    unknown_routes_are_problems
);

async fn health_ready_and_request_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["checks"]["database"], "ok");
    assert_eq!(ready.body["checks"]["coord"], "ok");
    assert_eq!(ready.body["checks"]["blob"], "ok");
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
}

async fn openapi_and_docs_are_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let spec = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/orders",
        "/api/v1/auth/register",
        "/api/v1/admin/products/{id}/stock",
        "/api/v1/cart/items/{product_id}",
        "/api/v1/events/{id}/queue/status",
        "/api/v1/events/{id}/reservations",
        "/api/v1/reservations/{id}/payment",
        "/api/v1/tickets/{id}/qr.svg",
        "/api/v1/admin/tickets/verify",
    ] {
        assert!(
            spec.body["paths"].get(path).is_some(),
            "{path} is documented"
        );
    }
    // Every operation lists its error answers as problem documents with their codes,
    // and every one that needs a token lists 401.
    for (path, item) in spec.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (status, answer) in responses {
                assert!(
                    answer["description"].is_string(),
                    "{method} {path} {status}"
                );
                if status.as_str() < "400" {
                    continue;
                }
                let schema = &answer["content"]["application/problem+json"]["schema"];
                let codes = schema["allOf"][1]["properties"]["code"]["enum"].as_array();
                assert!(
                    codes.is_some_and(|c| !c.is_empty()),
                    "{method} {path} {status} names its codes"
                );
            }
            if op.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path} lists 401");
            }
            assert!(responses.contains_key("500"), "{method} {path}");
        }
    }
    let hold = &spec.body["paths"]["/api/v1/events/{id}/reservations"]["post"];
    let codes = &hold["responses"]["401"]["content"]["application/problem+json"]["schema"]["allOf"]
        [1]["properties"]["code"]["enum"];
    assert_eq!(codes, &json!(["access_token_invalid", "unauthorized"]));

    let docs = app.get("/api/docs/", None).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("swagger"), "{}", docs.text);
    assert!(
        !docs.text.contains("cdn."),
        "the docs page loads nothing from the network"
    );
}

async fn unknown_routes_are_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/api/v1/nothing-here", None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.content_type, "application/problem+json");
    let res = app.request(Method::DELETE, "/products", None, None).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.code(), "method_not_allowed");
}
