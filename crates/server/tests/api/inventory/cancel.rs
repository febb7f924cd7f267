//! Cancelling a paid order before it ships (seed 002: a cancelled order gives its units
//! back): the units come back on sale exactly once, the payment is refunded once, a
//! shipped order cannot be cancelled, and a crowd cancelling its orders twice over while
//! the sync and the bus run leaves the stock exactly where it began.

use reqwest::{Method, StatusCode};

use super::{import, stock, today};
use crate::helpers::{Answer, Backend, TestApp, one_line, spawn_app};

crate::coord_backend_tests!(
    a_cancelled_order_gives_its_units_back_and_is_refunded,
    a_shipped_order_cannot_be_cancelled,
    fifty_buyers_cancel_twice_while_the_sync_runs
);

async fn cancel(app: &TestApp, token: Option<&str>, number: &str) -> Answer {
    app.request(
        Method::POST,
        &format!("/orders/{number}/cancel"),
        token,
        None,
    )
    .await
}

/// Buys `quantity` units with a card that is approved; the order's number.
async fn buy(app: &TestApp, token: &str, product: &str, quantity: i64) -> String {
    let res = app
        .post(
            "/orders",
            Some(token),
            one_line("tok_visa", product, quantity),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.body["number"].as_str().unwrap().to_owned()
}

async fn drain(app: &TestApp) {
    while app.components.bus.run_once().await.unwrap() > 0 {}
}

async fn a_cancelled_order_gives_its_units_back_and_is_refunded(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("CANCEL", 1_000, 10).await;
    let staff = app.staff_token().await;
    let buyer = app.register("buyer@example.com").await;
    let other = app.register("other@example.com").await;

    // Cancelled before the ledger has even heard the order was paid.
    let early = buy(&app, &buyer, &product, 3).await;
    assert_eq!(app.available(&product).await, 7);
    assert_eq!(
        cancel(&app, None, &early).await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = cancel(&app, Some(&other), &early).await;
    assert_eq!(
        res.status,
        StatusCode::NOT_FOUND,
        "another's order is not found"
    );
    assert_eq!(app.available(&product).await, 7, "nothing changed");
    let res = cancel(&app, Some(&buyer), &early).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["status"], "cancelled");
    assert!(res.body["cancelled_at"].is_string());
    assert!(res.body["refunded_at"].is_null());
    assert_eq!(app.available(&product).await, 10, "back on sale at once");

    // The late `order.paid` changes nothing, and the refund follows from the event.
    drain(&app).await;
    app.components.stock.sync().await.unwrap();
    let figures = stock(&app, &staff, "CANCEL").await;
    assert_eq!(figures["unshipped"], 0, "{figures}");
    assert_eq!(figures["net"], 10, "{figures}");
    assert_eq!(app.available(&product).await, 10);
    let order = app.get(&format!("/orders/{early}"), Some(&buyer)).await;
    assert_eq!(order.body["status"], "cancelled");
    assert!(order.body["refunded_at"].is_string(), "{}", order.text);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges WHERE status = 'refunded'")
            .await,
        1
    );

    // Cancelled after the ledger and the sync knew it: the sync brings the units back.
    let late = buy(&app, &buyer, &product, 4).await;
    drain(&app).await;
    app.components.stock.sync().await.unwrap();
    assert_eq!(stock(&app, &staff, "CANCEL").await["unshipped"], 4);
    assert_eq!(app.available(&product).await, 6);
    let res = cancel(&app, Some(&buyer), &late).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(app.available(&product).await, 10);
    // Again: answered as it is, and nothing comes back twice.
    let again = cancel(&app, Some(&buyer), &late).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["status"], "cancelled");
    drain(&app).await;
    app.components.stock.sync().await.unwrap();
    assert_eq!(app.available(&product).await, 10);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges WHERE status = 'refunded'")
            .await,
        2
    );

    // A failed payment has nothing to cancel.
    let declined = app
        .post(
            "/orders",
            Some(&buyer),
            one_line("tok_declined", &product, 1),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let number = declined.body["order_number"].as_str().unwrap();
    let res = cancel(&app, Some(&buyer), number).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text);
    assert_eq!(res.code(), "order_not_cancellable");
    assert_eq!(res.body["status"], "payment_failed");
    assert_eq!(
        cancel(&app, Some(&buyer), "no-such-order").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.available(&product).await, 10);
}

async fn a_shipped_order_cannot_be_cancelled(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("SHIPPED", 1_000, 10).await;
    let staff = app.staff_token().await;
    let buyer = app.register("buyer@example.com").await;
    let shipped = buy(&app, &buyer, &product, 2).await;
    let cancelled = buy(&app, &buyer, &product, 1).await;
    drain(&app).await;
    let id_of = |number: String| {
        let db = app.components.db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT id FROM orders WHERE number = $1")
                .bind(number)
                .fetch_one(db.reader())
                .await
                .unwrap()
        }
    };
    let (shipped_id, cancelled_id) = (id_of(shipped.clone()).await, id_of(cancelled.clone()).await);
    let at = format!("{}T00:00:01Z", today(&app));
    let res = import(
        &app,
        &staff,
        "shipments",
        format!("store,channel,reference,shipped_at\nmain,own,{shipped_id},{at}\n"),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let res = cancel(&app, Some(&buyer), &shipped).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text);
    assert_eq!(res.code(), "order_shipped");
    let order = app.get(&format!("/orders/{shipped}"), Some(&buyer)).await;
    assert_eq!(order.body["status"], "paid", "nothing changed");
    drain(&app).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges WHERE status = 'refunded'")
            .await,
        0
    );

    // A cancelled order cannot be shipped afterwards: the file is refused whole.
    assert_eq!(
        cancel(&app, Some(&buyer), &cancelled).await.status,
        StatusCode::OK
    );
    let res = import(
        &app,
        &staff,
        "shipments",
        format!("store,channel,reference,shipped_at\nmain,own,{cancelled_id},{at}\n"),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    assert_eq!(res.body["errors"][0]["line"], 2);
    app.components.stock.sync().await.unwrap();
    let figures = stock(&app, &staff, "SHIPPED").await;
    assert_eq!(
        (&figures["sold"], &figures["unshipped"], &figures["net"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(0),
            &serde_json::json!(8)
        ),
        "{figures}"
    );
    assert_eq!(app.available(&product).await, 8);
}

/// Fifty buyers take two units each of a hundred, then every one cancels twice at once
/// while the sync and the bus run every 10 ms: each order is cancelled and refunded
/// once, and the stock is whole again, neither short nor handed out twice.
async fn fifty_buyers_cancel_twice_while_the_sync_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("UNDO", 1_000, 100).await;
    let staff = app.staff_token().await;
    let tokens = app.register_crowd("undo", 50).await;
    let numbers =
        futures::future::join_all(tokens.iter().map(|token| buy(&app, token, &product, 2))).await;
    assert_eq!(app.available(&product).await, 0);

    let background = super::Background::start(&app);
    let answers = futures::future::join_all(
        tokens
            .iter()
            .zip(&numbers)
            .flat_map(|(token, number)| [(token, number), (token, number)])
            .map(|(token, number)| cancel(&app, Some(token), number)),
    )
    .await;
    background.stop().await;
    drain(&app).await;
    app.components.stock.sync().await.unwrap();

    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["status"], "cancelled");
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM orders WHERE status = 'cancelled' AND refunded_at IS NOT NULL"
        )
        .await,
        50
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE topic = 'order.cancelled'")
            .await,
        50,
        "one event per order"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sim_gateway_charges WHERE status = 'refunded'")
            .await,
        50
    );
    let figures = stock(&app, &staff, "UNDO").await;
    assert_eq!(figures["unshipped"], 0, "{figures}");
    assert_eq!(figures["net"], 100, "{figures}");
    assert_eq!(figures["allocatable"], 100, "{figures}");
    assert_eq!(figures["reserved"], 0, "{figures}");
    assert_eq!(app.available(&product).await, 100);
    // And the hundred sell again, exactly.
    let wave = app.register_crowd("again", 60).await;
    let bought = futures::future::join_all(wave.iter().map(|token| {
        let (app, body) = (&app, one_line("tok_visa", &product, 2));
        async move { app.post("/orders", Some(token), body).await.status }
    }))
    .await;
    assert_eq!(
        bought.iter().filter(|s| **s == StatusCode::CREATED).count(),
        50
    );
}
