//! The stampede: 400 buyers, 50 units.

use reqwest::StatusCode;

use crate::helpers::{Backend, one_line, spawn_app};

crate::backend_tests!(
    four_hundred_buyers_fifty_units,
    declined_payments_give_back_under_a_stampede
);

async fn four_hundred_buyers_fifty_units(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("FLASH", 5_000, 50).await;
    let tokens = app.register_crowd("buyer", 400).await;

    let body = one_line("tok_visa", &product, 1);
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

async fn declined_payments_give_back_under_a_stampede(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("MIXED", 2_000, 30).await;
    let tokens = app.register_crowd("mixed", 240).await;
    let answers = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        // Every third buyer's card is declined; a few more hit a gateway error.
        let card = match i % 12 {
            0 | 3 | 6 | 9 => "tok_declined",
            1 => "tok_gateway_error",
            _ => "tok_visa",
        };
        let body = one_line(card, &product, 1);
        let app = &app;
        async move { (card, app.post("/orders", Some(token), body).await) }
    }))
    .await;

    let paid = answers
        .iter()
        .filter(|(_, a)| a.status == StatusCode::CREATED)
        .count();
    for (card, answer) in &answers {
        let expected: &[StatusCode] = match *card {
            "tok_visa" => &[StatusCode::CREATED, StatusCode::CONFLICT],
            "tok_declined" => &[StatusCode::PAYMENT_REQUIRED, StatusCode::CONFLICT],
            _ => &[StatusCode::BAD_GATEWAY, StatusCode::CONFLICT],
        };
        assert!(expected.contains(&answer.status), "{card}: {}", answer.text);
    }
    let available = app.available(&product).await;
    assert!(paid <= 30 && available >= 0);
    assert_eq!(
        i64::try_from(paid).unwrap() + available,
        30,
        "every failed payment gave its unit back"
    );
    let failed_units: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM order_lines l JOIN orders o ON o.id = l.order_id \
         WHERE o.status = 'payment_failed'",
    )
    .fetch_one(app.components.db.reader())
    .await
    .unwrap();
    let failed_answers = answers
        .iter()
        .filter(|(_, a)| {
            a.status == StatusCode::PAYMENT_REQUIRED || a.status == StatusCode::BAD_GATEWAY
        })
        .count();
    assert_eq!(failed_units, i64::try_from(failed_answers).unwrap());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE status = 'pending_payment'")
            .await,
        0
    );
}
