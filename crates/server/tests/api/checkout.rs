//! Checkout: reserve, charge, settle; failures give back exactly what was reserved.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, one_line, order_body, spawn_app};

crate::backend_tests!(
    paid_order_clears_the_cart_and_mails_once,
    declined_and_gateway_errors_give_the_stock_back,
    all_lines_or_none,
    orders_are_private,
    order_numbers_rise_within_a_day,
    the_allocation_store_follows_every_change_of_stock,
);

fn mail_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("mail"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

async fn paid_order_clears_the_cart_and_mails_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 3_500, 10).await;
    let towel = app.create_product("TOWEL", 1_999, 10).await;
    let me = app.register("buyer@example.com").await;
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": tee, "quantity": 2}),
    )
    .await;
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": towel, "quantity": 1}),
    )
    .await;

    let res = app
        .post("/orders", Some(&me), order_body("tok_visa", None))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let order = res.body;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["subtotal"], 8_999);
    assert_eq!(order["tax"], 899);
    assert_eq!(order["total"], 9_898);
    assert_eq!(order["currency"], "JPY");
    assert!(order["paid_at"].is_string());
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    let number = order["number"].as_str().unwrap();
    assert_eq!(number.len(), 15, "{number}");

    assert_eq!(app.available(&tee).await, 8);
    assert_eq!(app.available(&towel).await, 9);
    assert_eq!(
        app.get("/cart", Some(&me)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let fetched = app.get(&format!("/orders/{number}"), Some(&me)).await;
    assert_eq!(fetched.body, order);
    let listed = app.get("/orders", Some(&me)).await;
    assert_eq!(listed.body["items"][0]["number"], number);

    // Mails go out after commit, through the outbox: one to the customer, one to the shop.
    assert!(mail_files(&app.data_dir).is_empty());
    app.components.bus.run_once().await.unwrap();
    app.components.bus.run_once().await.unwrap();
    let mails = mail_files(&app.data_dir);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("buyer@example.com")));
    assert!(mails.iter().any(|m| m.contains("shop@matsuri.localhost")));
    // A redelivered event sends nothing twice.
    sqlx::query("UPDATE bus_cursors SET position = 0")
        .execute(app.components.db.writer())
        .await
        .unwrap();
    app.components.bus.run_once().await.unwrap();
    assert_eq!(mail_files(&app.data_dir).len(), 2);
}

async fn declined_and_gateway_errors_give_the_stock_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 3_500, 5).await;
    let me = app.register("declined@example.com").await;
    app.post(
        "/cart/items",
        Some(&me),
        json!({"product_id": tee, "quantity": 2}),
    )
    .await;

    for (card, status, code) in [
        (
            "tok_declined",
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
        ),
        (
            "tok_gateway_error",
            StatusCode::BAD_GATEWAY,
            "payment_gateway_error",
        ),
        (
            "tok_unknown_card",
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
        ),
    ] {
        let res = app.post("/orders", Some(&me), order_body(card, None)).await;
        assert_eq!(res.status, status, "{card}: {}", res.text);
        assert_eq!(res.code(), code);
        let number = res.body["order_number"].as_str().unwrap();
        let order = app.get(&format!("/orders/{number}"), Some(&me)).await;
        assert_eq!(order.body["status"], "payment_failed");
        assert_eq!(
            app.available(&tee).await,
            5,
            "{card}: stock is back exactly"
        );
        let cart = app.get("/cart", Some(&me)).await;
        assert_eq!(
            cart.body["items"][0]["quantity"], 2,
            "{card}: the cart is kept"
        );
    }
    let paid = app
        .post("/orders", Some(&me), order_body("tok_visa", None))
        .await;
    assert_eq!(paid.status, StatusCode::CREATED);
    assert_eq!(app.available(&tee).await, 3);
}

async fn all_lines_or_none(backend: Backend) {
    let app = spawn_app(backend).await;
    let plenty = app.create_product("PLENTY", 100, 10).await;
    let scarce = app.create_product("SCARCE", 100, 1).await;
    let me = app.register("lines@example.com").await;
    let items =
        json!([{"product_id": plenty, "quantity": 3}, {"product_id": scarce, "quantity": 2}]);
    let res = app
        .post("/orders", Some(&me), order_body("tok_visa", Some(items)))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.code(), "out_of_stock");
    assert_eq!(res.body["product_id"], scarce.as_str());
    assert_eq!(app.available(&plenty).await, 10);
    assert_eq!(app.available(&scarce).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);

    let empty = app
        .post("/orders", Some(&me), order_body("tok_visa", None))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.code(), "cart_empty");
}

async fn orders_are_private(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 1_000, 5).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let res = app
        .post("/orders", Some(&alice), one_line("tok_visa", &tee, 1))
        .await;
    let number = res.body["number"].as_str().unwrap();
    let peek = app.get(&format!("/orders/{number}"), Some(&bob)).await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    assert_eq!(peek.code(), "not_found");
    assert!(!peek.text.contains(&tee));
    assert_eq!(
        app.get("/orders", Some(&bob)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get(&format!("/orders/{number}"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let staff = app.staff_token().await;
    assert_eq!(
        app.get(&format!("/orders/{number}"), Some(&staff))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn order_numbers_rise_within_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 1_000, 100).await;
    let me = app.register("numbers@example.com").await;
    let mut numbers = Vec::new();
    for _ in 0..5 {
        let res = app
            .post("/orders", Some(&me), one_line("tok_visa", &tee, 1))
            .await;
        numbers.push(res.body["number"].as_str().unwrap().to_owned());
    }
    let day = matsuri_core::timefmt::yyyymmdd(matsuri_core::Clock::now_ms(&*app.clock));
    for n in &numbers {
        assert!(n.starts_with(&format!("{day}-")), "{n}");
    }
    assert_eq!(numbers[0], format!("{day}-000001"));
    let mut sorted = numbers.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, numbers, "unique and rising");
}

/// Checkouts take their units from the allocation store; every change of stock reaches
/// it at once, or buyers would be turned away from units that are there.
async fn the_allocation_store_follows_every_change_of_stock(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("GATE", 1_000, 2).await;
    let staff = app.staff_token().await;
    let mut buyers = Vec::new();
    for i in 0..5 {
        buyers.push(app.register(&format!("gate{i}@example.com")).await);
    }
    let buy = |i: usize, card: &'static str| {
        let token = buyers[i].clone();
        let body = one_line(card, &tee, 1);
        let app = &app;
        async move { app.post("/orders", Some(&token), body).await }
    };

    assert_eq!(buy(0, "tok_visa").await.status, StatusCode::CREATED);
    // A declined payment hands its unit back at once.
    assert_eq!(
        buy(1, "tok_declined").await.status,
        StatusCode::PAYMENT_REQUIRED
    );
    assert_eq!(buy(1, "tok_visa").await.status, StatusCode::CREATED);
    let refused = buy(2, "tok_visa").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "out_of_stock");
    assert_eq!(refused.body["available"], 0);

    // Staff count 4 on the shelf: the 2 sold units are not shipped yet, so 2 can be sold,
    // at once.
    let set = app
        .request(
            reqwest::Method::PUT,
            &format!("/admin/products/{tee}/stock"),
            Some(&staff),
            Some(json!({"stock": 4})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["available"], 2, "{}", set.text);
    assert_eq!(buy(2, "tok_visa").await.status, StatusCode::CREATED);
    assert_eq!(buy(3, "tok_visa").await.status, StatusCode::CREATED);
    let orders = app.count("SELECT COUNT(*) FROM orders").await;
    let refused = buy(4, "tok_visa").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["available"], 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders").await,
        orders,
        "a refusal writes nothing"
    );
    assert_eq!(app.available(&tee).await, 0);
}
