//! The allocation store under a stampede while the sync runs, give-backs that count once
//! (also across a restart), and the rollback that a naive sync would cause.

use std::time::Duration;

use reqwest::StatusCode;

use matsuri_coord::Taken;

use crate::helpers::{Backend, one_line, spawn_app, spawn_app_with};

crate::coord_backend_tests!(
    five_hundred_buyers_while_the_sync_runs,
    a_naive_sync_oversells_and_ours_does_not,
    a_give_back_counts_once_across_a_restart
);

async fn five_hundred_buyers_while_the_sync_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("FLASH", 5_000, 100).await;
    let tokens = app.register_crowd("rush", 500).await;

    // The sync every 10 ms and the ledger recording sales, beside the buyers.
    let background = super::Background::start(&app);
    let answers = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        let card = if i % 10 == 0 {
            "tok_declined"
        } else {
            "tok_visa"
        };
        let (app, body) = (&app, one_line(card, &product, 1));
        async move { app.post("/orders", Some(token), body).await }
    }))
    .await;
    background.stop().await;
    while app.components.bus.run_once().await.unwrap() > 0 {}
    app.components.stock.sync().await.unwrap();

    let paid = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let declined = answers
        .iter()
        .filter(|a| a.status == StatusCode::PAYMENT_REQUIRED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT && a.code() == "out_of_stock")
        .count();
    assert_eq!(
        paid + declined + refused,
        500,
        "every buyer got a clear answer"
    );
    assert!(paid <= 100, "never more than the stock: {paid}");
    let sold: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM order_lines l \
         JOIN orders o ON o.id = l.order_id WHERE o.status = 'paid'",
    )
    .fetch_one(app.components.db.reader())
    .await
    .unwrap();
    assert_eq!(sold, i64::try_from(paid).unwrap());
    // Every delta became a sale the ledger knows, or was given back.
    assert!(
        app.components
            .coord
            .alloc_open(&product)
            .await
            .unwrap()
            .is_empty()
    );
    // A declined buyer's unit may come back after the others were turned away: it is on
    // sale again, and nothing is lost.
    assert_eq!(app.available(&product).await, 100 - sold);
    let staff = app.staff_token().await;
    let figures = super::stock(&app, &staff, "FLASH").await;
    assert_eq!(figures["unshipped"], sold, "{figures}");
    assert_eq!(figures["net"], 100 - sold);
    assert_eq!(figures["allocatable"], 100 - sold);
    assert_eq!(figures["reserved"], 0);
    // The rest sells out to a second wave, exactly.
    let wave = app.register_crowd("wave", 40).await;
    let answers = futures::future::join_all(wave.iter().map(|token| {
        let (app, body) = (&app, one_line("tok_visa", &product, 1));
        async move { app.post("/orders", Some(token), body).await }
    }))
    .await;
    let more = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(i64::try_from(paid + more).unwrap(), 100.min(sold + 40));
}

/// The seed's rollback: a sync that sets the store to the ledger's net while orders it
/// does not know yet hold units hands those units out twice.
async fn a_naive_sync_oversells_and_ours_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("ROLL", 1_000, 10).await;
    let coord = app.components.coord.clone();
    let hour = Duration::from_secs(3600);
    let take = |order: String| {
        let (coord, line) = (coord.clone(), vec![(product.clone(), 1)]);
        async move { coord.alloc_take(&order, &line, hour).await.unwrap() }
    };
    // Six orders took a unit each; the ledger knows none of them yet.
    for n in 0..6 {
        assert_eq!(take(format!("early-{n}")).await, Taken::Taken);
    }
    // Naive: the count becomes the ledger's net, as if nothing were held.
    let open = coord.alloc_open(&product).await.unwrap();
    coord.alloc_sync(&product, 10, &open, false).await.unwrap();
    let mut naive = 6;
    for n in 0..20 {
        if take(format!("naive-{n}")).await == Taken::Taken {
            naive += 1;
        }
    }
    assert_eq!(naive, 16, "the naive sync sold 16 of 10");

    // Ours, from the same start on a fresh product.
    let product = app.create_product("SAFE", 1_000, 10).await;
    let take = |order: String| {
        let (coord, line) = (coord.clone(), vec![(product.clone(), 1)]);
        async move { coord.alloc_take(&order, &line, hour).await.unwrap() }
    };
    for n in 0..6 {
        assert_eq!(take(format!("safe-early-{n}")).await, Taken::Taken);
    }
    app.components.stock.sync().await.unwrap();
    let mut ours = 6;
    for n in 0..20 {
        if take(format!("safe-{n}")).await == Taken::Taken {
            ours += 1;
        }
    }
    assert_eq!(ours, 10, "our sync sold exactly the 10");
}

/// A declined order's units come back once, however often the give-back runs, and a
/// crash between the charge and its recording is settled after a restart without
/// giving anything back twice.
async fn a_give_back_counts_once_across_a_restart(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.http.request_timeout_seconds = 1;
        s.tickets.max_queue_wait_seconds = 0;
        s.payments.slow_latency_ms = 60_000;
    })
    .await;
    let product = app.create_product("ONCE", 1_000, 10).await;
    let me = app.register("once@example.com").await;
    let res = app
        .post("/orders", Some(&me), one_line("tok_declined", &product, 3))
        .await;
    assert_eq!(res.status, StatusCode::PAYMENT_REQUIRED);
    let declined: String =
        sqlx::query_scalar("SELECT id FROM orders WHERE status = 'payment_failed'")
            .fetch_one(app.components.db.reader())
            .await
            .unwrap();
    assert_eq!(app.available(&product).await, 10);
    for _ in 0..3 {
        assert_eq!(app.components.stock.give_back(&declined).await.unwrap(), 0);
    }
    assert_eq!(app.available(&product).await, 10);

    // A charge that never returns: the request is cut off with the order pending.
    let res = app
        .post("/orders", Some(&me), one_line("tok_slow", &product, 2))
        .await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.text);
    assert_eq!(app.available(&product).await, 8);
    // The process dies; another starts on the same database (and the same Redis, when
    // there is one; the in-process store starts empty and is counted again). The first
    // is not asked anything again.
    let restarted = app.spawn_peer().await;
    restarted.clock.advance(Duration::from_secs(
        restarted.components.shop.settings().recovery_grace_seconds + 1,
    ));
    assert_eq!(
        restarted
            .components
            .shop
            .recover_pending_orders()
            .await
            .unwrap(),
        1
    );
    let pending: String =
        sqlx::query_scalar("SELECT id FROM orders WHERE status = 'payment_failed' AND id <> $1")
            .bind(&declined)
            .fetch_one(restarted.components.db.reader())
            .await
            .unwrap();
    assert_eq!(
        restarted
            .components
            .stock
            .give_back(&pending)
            .await
            .unwrap(),
        0
    );
    restarted.components.stock.sync().await.unwrap();
    assert_eq!(restarted.available(&product).await, 10);
}
