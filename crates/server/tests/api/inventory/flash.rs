//! Flash-sale mode: the sync leaves the allocation store alone and checkout decides from
//! it; turning the mode off reports what differed and syncs again.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{import, stock, today};
use crate::helpers::{Backend, one_line, spawn_app};

crate::coord_backend_tests!(flash_sale_mode_suspends_the_sync_and_reconciles);

async fn flash_sale_mode_suspends_the_sync_and_reconciles(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("FLASH", 1_000, 10).await;
    let buyer = app.register("flash@example.com").await;

    let res = app.get("/admin/inventory/flash-sale", Some(&staff)).await;
    assert_eq!(res.body["enabled"], false, "{}", res.text);
    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&buyer),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&staff),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["enabled"], true);
    assert!(res.body["since"].is_string());

    // Stock bought in meanwhile reaches the ledger, not the allocation store.
    let day = today(&app);
    let purchases = format!("store,sku,quantity,at\nmain,FLASH,5,{day}T00:00:01Z\n");
    assert_eq!(
        import(&app, &staff, "purchases", purchases, None)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.components.stock.sync().await.unwrap(),
        0,
        "the sync is suspended"
    );
    assert_eq!(app.available(&product).await, 10);
    // Checkout decides from the store alone.
    let res = app
        .post("/orders", Some(&buyer), one_line("tok_visa", &product, 2))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    app.components.bus.run_once().await.unwrap();
    app.components.stock.sync().await.unwrap();
    assert_eq!(app.available(&product).await, 8);
    let figures = stock(&app, &staff, "FLASH").await;
    assert_eq!(
        (&figures["net"], &figures["allocatable"]),
        (&json!(13), &json!(8))
    );

    // Off: the difference is reported, and the store follows the ledger again.
    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&staff),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(res.body["enabled"], false, "{}", res.text);
    let report = app
        .get("/admin/inventory/reconciliation", Some(&staff))
        .await;
    assert_eq!(report.status, StatusCode::OK);
    let rows = report.body.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", report.text);
    assert_eq!(rows[0]["sku"], "FLASH");
    assert_eq!(rows[0]["ledger"], 13);
    assert_eq!(rows[0]["allocation"], 8);
    assert_eq!(app.available(&product).await, 13);
    // Turning it off again changes nothing.
    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&staff),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        app.get("/admin/inventory/reconciliation", Some(&staff))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
