//! Staff manage products; anyone browses them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, spawn_app};

crate::backend_tests!(
    staff_create_products_and_set_stock,
    products_are_listed_in_pages
);

async fn staff_create_products_and_set_stock(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let res = app
        .post("/admin/products", Some(&staff), json!({"sku": "TEE-M", "name": "Tee", "price": 3500, "description": "Cotton", "stock": 5}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.body["currency"], "JPY");
    assert_eq!(res.body["available"], 5);

    let dup = app
        .post(
            "/admin/products",
            Some(&staff),
            json!({"sku": "TEE-M", "name": "Tee", "price": 3500, "stock": 5}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "sku_taken");

    let set = app
        .request(
            Method::PUT,
            &format!("/admin/products/{id}/stock"),
            Some(&staff),
            Some(json!({"stock": 42})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(app.available(&id).await, 42);

    let negative = app
        .request(
            Method::PUT,
            &format!("/admin/products/{id}/stock"),
            Some(&staff),
            Some(json!({"stock": -1})),
        )
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.available(&id).await, 42);

    let missing = app
        .request(
            Method::PUT,
            "/admin/products/0190f000-0000-7000-8000-000000000000/stock",
            Some(&staff),
            Some(json!({"stock": 1})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "product_not_found");
    assert_eq!(
        app.get("/products/not-an-id", None).await.code(),
        "product_not_found"
    );
}

async fn products_are_listed_in_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        app.create_product(&format!("P-{i}"), 100 + i, 10).await;
    }
    let first = app.get("/products?limit=2", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = first.body["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = app
            .get(&format!("/products?limit=2&cursor={c}"), None)
            .await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned()),
        );
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, ["P-0", "P-1", "P-2", "P-3", "P-4"]);
    assert_eq!(
        app.get("/products?limit=1000", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/products?limit=abc", None).await.status,
        StatusCode::BAD_REQUEST
    );
}
