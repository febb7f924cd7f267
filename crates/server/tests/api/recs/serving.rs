//! Serving and recording: an unknown user gets popular items (before any run, counted on
//! the log), the shop records views, cart adds and purchases itself, and the API refuses
//! bad activity with the contract's codes, after checking who asks.

use reqwest::StatusCode;
use serde_json::json;

use super::{activity, ids, run_batch, two_groups};
use crate::helpers::{Backend, one_line, spawn_app};
use matsuri_core::Clock;
use matsuri_module::ActivityKind;
use matsuri_recs::Event;

crate::coord_backend_tests!(
    an_unknown_user_gets_popular_products,
    the_shop_records_what_users_do,
    bad_activity_is_refused_after_authentication,
    old_activity_is_deleted
);

async fn an_unknown_user_gets_popular_products(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = two_groups(&app).await;
    let newcomer = app.register("newcomer@example.com").await;

    // No run yet: popular on the log, marked so.
    let res = app
        .get("/recommendations/me?limit=5", Some(&newcomer))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(ids(&res.body).len(), 5, "{}", res.text);
    assert!(res.body["generated_at"].is_null());
    assert!(
        res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["reason"] == "popular")
    );

    run_batch(&app).await;
    let res = app
        .get("/recommendations/me?limit=5", Some(&newcomer))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let got = ids(&res.body);
    assert_eq!(got.len(), 5, "{}", res.text);
    assert!(
        res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["reason"] == "popular")
    );
    // Group B has more users: its products are the popular ones.
    assert!(got.iter().all(|p| shop.b.contains(p)), "{}", res.text);
    assert!(res.body["generated_at"].is_string());

    // A product nobody looked at has no related items: popular ones stand in.
    let lonely = app.create_product("LONELY", 500, 1).await;
    let res = app
        .get(&format!("/products/{lonely}/related?limit=3"), None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(ids(&res.body).len(), 3);
    let res = app
        .get(
            "/products/00000000-0000-7000-8000-000000000000/related",
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.code(), "product_not_found");
    let res = app
        .get("/recommendations/me?limit=0", Some(&newcomer))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn the_shop_records_what_users_do(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("TEE", 3_000, 10).await;
    let buyer = app.register("buyer@example.com").await;
    let res = app.get(&format!("/products/{product}"), Some(&buyer)).await;
    assert_eq!(res.status, StatusCode::OK);
    // An anonymous view is nobody's.
    app.get(&format!("/products/{product}"), None).await;
    let res = app
        .post(
            "/cart/items",
            Some(&buyer),
            json!({"product_id": product, "quantity": 1}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let res = app
        .post("/orders", Some(&buyer), one_line("tok_visa", &product, 2))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    activity(&app, &buyer, json!({"kind": "search", "query": "tour tee"})).await;
    app.components.recs.log().flush().await;
    let count = |kind: &'static str| app.count(kind);
    assert_eq!(
        count("SELECT COUNT(*) FROM recs_activity WHERE kind = 'view'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM recs_activity WHERE kind = 'cart_add'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM recs_activity WHERE kind = 'purchase'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM recs_activity WHERE kind = 'search' AND query = 'tour tee'")
            .await,
        1
    );
}

async fn bad_activity_is_refused_after_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("CAP", 2_000, 10).await;
    let user = app.register("bad@example.com").await;
    for body in [
        json!({"kind": "stare", "product_id": product}),
        json!({"kind": "view"}),
        json!({"kind": "cart_add", "product_id": "00000000-0000-7000-8000-000000000000"}),
        json!({"kind": "search"}),
    ] {
        let res = app.post("/activity", Some(&user), body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.text
        );
        assert_eq!(res.code(), "validation_failed");
        let res = app.post("/activity", None, body).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(res.code(), "unauthorized");
    }
    let res = app.post("/activity", Some(&user), json!({"kind": 3})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = app.get("/recommendations/me", None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

async fn old_activity_is_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = app.clock.now_ms();
    let day = 86_400_000;
    let event = |days_ago: i64| Event {
        at: now - days_ago * day,
        user_id: "someone".into(),
        kind: ActivityKind::View,
        product_id: Some("a-product".into()),
        query: None,
    };
    let events: Vec<Event> = [45, 40, 31, 29, 1].into_iter().map(event).collect();
    matsuri_recs::append(&app.components.db, &events)
        .await
        .unwrap();
    let retention = i64::from(app.components.recs.settings().retention_days);
    assert_eq!(retention, 30);
    assert_eq!(app.components.recs.prune_old_activity().await.unwrap(), 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM recs_activity").await, 2);
    assert_eq!(app.components.recs.prune_old_activity().await.unwrap(), 0);
}
