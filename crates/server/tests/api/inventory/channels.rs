//! Marketplace channels against the simulated marketplace over HTTP: a channel sells only
//! units granted out of the allocation store, its orders become unshipped ledger orders
//! and a shipments import closes them, flash-sale mode takes every listing back, a channel
//! that is down shows it and never blocks checkout, and 500 buyers with a marketplace
//! selling the same SKU never sell a unit twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use matsuri_inventory::simulated::SimulatedMarketplace;

use super::{import, stock, today};
use crate::helpers::{Backend, TestApp, one_line, spawn_app};

crate::coord_backend_tests!(
    a_marketplace_sells_its_grant_and_a_shipment_closes_its_order,
    flash_sale_takes_every_listing_back_and_off_gives_them_again,
    a_channel_that_is_down_shows_failing_and_checkout_goes_on,
    five_hundred_buyers_and_a_marketplace_on_one_hundred_units
);

/// A simulated marketplace on a loopback port, and its base URL.
async fn marketplace(token: &str) -> (Arc<SimulatedMarketplace>, String) {
    let market = SimulatedMarketplace::new(token);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = market.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (market, base)
}

async fn connect(app: &TestApp, staff: &str, name: &str, base: &str, token: &str) -> Value {
    let res = app
        .post(
            "/admin/channels",
            Some(staff),
            json!({"name": name, "base_url": base, "token": token}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert!(res.body.get("token").is_none(), "the token is never shown");
    res.body
}

/// Lets every channel run now, whatever its pause.
async fn cycle(app: &TestApp) {
    app.clock.advance(Duration::from_secs(120));
    app.components.channels.run_once().await.unwrap();
}

async fn settle(app: &TestApp) {
    while app.components.bus.run_once().await.unwrap() > 0 {}
    app.components.stock.sync().await.unwrap();
}

async fn a_marketplace_sells_its_grant_and_a_shipment_closes_its_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let buyer = app.register("chan@example.com").await;
    let product = app.create_product("CHAN", 1_000, 20).await;
    let (market, base) = marketplace("secret-1").await;

    // Bad connections are refused whole, by staff only.
    let res = app
        .post(
            "/admin/channels",
            Some(&buyer),
            json!({"name": "m", "base_url": base, "token": "t"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app
        .post(
            "/admin/channels",
            Some(&staff),
            json!({"name": "Bad Name", "base_url": "ftp://x", "token": ""}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    assert_eq!(res.body["errors"].as_array().unwrap().len(), 3);
    let res = app
        .request(Method::DELETE, "/admin/channels/nope", Some(&staff), None)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    let channel = connect(&app, &staff, "rakuichi", &base, "secret-1").await;
    assert_eq!(channel["status"], "new");
    let res = app
        .post(
            "/admin/channels",
            Some(&staff),
            json!({"name": "rakuichi", "base_url": base, "token": "t"}),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a second with the same name"
    );

    // The shop and one channel share 20 units: the channel lists half, less the buffer.
    cycle(&app).await;
    settle(&app).await;
    assert_eq!(market.listing("CHAN").listed, 8);
    assert_eq!(app.available(&product).await, 12);
    let res = app.get("/admin/channels", Some(&staff)).await;
    assert_eq!(res.body[0]["status"], "ok", "{}", res.text);
    assert_eq!(res.body[0]["listed"], 8);

    // Three bought there become an unshipped order of the channel.
    assert!(market.buy("CHAN", 3));
    cycle(&app).await;
    settle(&app).await;
    let figures = stock(&app, &staff, "CHAN").await;
    assert_eq!(figures["unshipped"], 3, "{figures}");
    assert_eq!(figures["net"], 17);
    let listed = market.listing("CHAN").listed;
    assert_eq!(
        figures["allocatable"].as_i64().unwrap() + figures["channels"].as_i64().unwrap(),
        17,
        "every unit is the shop's or the channel's: {figures}"
    );
    assert_eq!(figures["channels"].as_i64().unwrap(), listed);

    // A shipments import closes it (sold from then on), and the channel is told.
    let at = format!("{}T00:00:01Z", today(&app));
    let shipped = format!("store,channel,reference,shipped_at\nmain,rakuichi,mp-00000001,{at}\n");
    let bad = format!("{shipped}main,rakuichi,nope,{at}\n");
    let res = import(&app, &staff, "shipments", bad, None).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    assert_eq!(res.body["errors"][0]["line"], 3);
    assert_eq!(
        stock(&app, &staff, "CHAN").await["unshipped"],
        3,
        "nothing applied"
    );
    let res = import(&app, &staff, "shipments", shipped, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let figures = stock(&app, &staff, "CHAN").await;
    assert_eq!(
        (&figures["unshipped"], &figures["sold"], &figures["net"]),
        (&json!(0), &json!(3), &json!(17)),
        "{figures}"
    );
    cycle(&app).await;
    assert_eq!(market.shipped(), ["mp-00000001"]);

    // Removing the channel takes its listing back, and the shop gets the units.
    let id = channel["id"].as_str().unwrap();
    let res = app
        .request(
            Method::DELETE,
            &format!("/admin/channels/{id}"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(market.listing("CHAN").listed, 0);
    settle(&app).await;
    let net = stock(&app, &staff, "CHAN").await["net"].as_i64().unwrap();
    assert_eq!(app.available(&product).await, net);
}

async fn flash_sale_takes_every_listing_back_and_off_gives_them_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("FLASHMP", 1_000, 40).await;
    let (market, base) = marketplace("secret-2").await;
    connect(&app, &staff, "ichiba", &base, "secret-2").await;
    cycle(&app).await;
    settle(&app).await;
    assert_eq!(market.listing("FLASHMP").listed, 18);
    assert!(market.buy("FLASHMP", 1));

    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&staff),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(
        market.listing("FLASHMP").listed,
        0,
        "the marketplace stops selling"
    );
    assert!(!market.buy("FLASHMP", 1));
    // The shop has every unit but the one the marketplace sold.
    assert_eq!(app.available(&product).await, 39);
    cycle(&app).await;
    assert_eq!(
        market.listing("FLASHMP").listed,
        0,
        "and gets nothing while it lasts"
    );

    let res = app
        .request(
            Method::PUT,
            "/admin/inventory/flash-sale",
            Some(&staff),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    cycle(&app).await;
    settle(&app).await;
    assert_eq!(market.listing("FLASHMP").listed, 17, "(39 / 2) - 2");
    assert_eq!(app.available(&product).await, 22);
}

async fn a_channel_that_is_down_shows_failing_and_checkout_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let buyer = app.register("down@example.com").await;
    let product = app.create_product("DOWN", 1_000, 10).await;
    let (market, base) = marketplace("secret-3").await;
    connect(&app, &staff, "sleepy", &base, "secret-3").await;
    market.set_down(true);
    cycle(&app).await;
    let res = app.get("/admin/channels", Some(&staff)).await;
    assert_eq!(res.body[0]["status"], "failing", "{}", res.text);
    assert!(
        res.body[0]["last_error"].as_str().unwrap().contains("503"),
        "{}",
        res.text
    );
    // Its next attempt waits: a run straight after does nothing.
    assert_eq!(app.components.channels.run_once().await.unwrap(), 0);
    let res = app
        .post("/orders", Some(&buyer), one_line("tok_visa", &product, 2))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    market.set_down(false);
    cycle(&app).await;
    let res = app.get("/admin/channels", Some(&staff)).await;
    assert_eq!(res.body[0]["status"], "ok", "{}", res.text);
    assert!(res.body[0]["last_error"].is_null());
    // A wrong token is a failure too.
    connect(&app, &staff, "wrongkey", &base, "not-the-token").await;
    cycle(&app).await;
    let res = app.get("/admin/channels", Some(&staff)).await;
    let wrong = res
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "wrongkey")
        .unwrap();
    assert_eq!(wrong["status"], "failing");
    assert!(wrong["last_error"].as_str().unwrap().contains("401"));
}

async fn five_hundred_buyers_and_a_marketplace_on_one_hundred_units(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("STORMMP", 5_000, 100).await;
    let tokens = app.register_crowd("mpstorm", 500).await;
    let (market, base) = marketplace("secret-4").await;
    connect(&app, &staff, "storm", &base, "secret-4").await;
    cycle(&app).await;

    // The sync, the bus, the channel's cycle and the marketplace's shoppers, beside the
    // buyers.
    let running = Arc::new(AtomicBool::new(true));
    let background = {
        let (stock, bus, channels, clock, running) = (
            app.components.stock.clone(),
            app.components.bus.clone(),
            app.components.channels.clone(),
            app.clock.clone(),
            running.clone(),
        );
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                stock.sync().await.unwrap();
                bus.run_once().await.unwrap();
                clock.advance(Duration::from_secs(5));
                channels.run_once().await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let shoppers = {
        let (market, running) = (market.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                market.buy("STORMMP", 1);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
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
    running.store(false, Ordering::Relaxed);
    background.await.unwrap();
    shoppers.await.unwrap();
    cycle(&app).await;
    settle(&app).await;

    let paid = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    for answer in &answers {
        assert!(
            [
                StatusCode::CREATED,
                StatusCode::CONFLICT,
                StatusCode::PAYMENT_REQUIRED
            ]
            .contains(&answer.status),
            "{} {}",
            answer.status,
            answer.text
        );
    }
    let paid = i64::try_from(paid).unwrap();
    let listing = market.listing("STORMMP");
    assert!(paid + listing.sold <= 100, "sold {paid} + {}", listing.sold);
    let figures = stock(&app, &staff, "STORMMP").await;
    let allocatable = figures["allocatable"].as_i64().unwrap();
    assert_eq!(
        paid + listing.sold + allocatable + listing.listed,
        100,
        "every unit sold once or still on sale: {figures}, {listing:?}"
    );
    assert_eq!(figures["channels"].as_i64().unwrap(), listing.listed);
    assert_eq!(figures["unshipped"].as_i64().unwrap(), paid + listing.sold);
    assert_eq!(
        figures["reserved"], 0,
        "every delta became a sale or was given back"
    );
}

/// The protocol's promises, through the built-in connector: an adjustment applies once
/// by id, a removal takes at most what is listed, and pages of orders follow the cursor.
#[tokio::test]
async fn the_connector_and_the_simulated_marketplace_keep_the_protocol() {
    use matsuri_inventory::marketplace::{Adjustment, Connector, HttpConnector};

    let (market, base) = marketplace("proto").await;
    let connector = HttpConnector::new(&base, "proto", Duration::from_secs(5)).unwrap();
    let add = Adjustment {
        id: "a1".into(),
        sku: "P".into(),
        delta: 5,
    };
    let first = connector.adjust(std::slice::from_ref(&add)).await.unwrap();
    let again = connector.adjust(&[add]).await.unwrap();
    assert_eq!(first, again, "the same id answers as the first time");
    assert_eq!(market.listing("P").listed, 5, "and moves nothing twice");
    assert!(market.buy("P", 2));
    let take = Adjustment {
        id: "a2".into(),
        sku: "P".into(),
        delta: -10,
    };
    let taken = connector.adjust(&[take]).await.unwrap();
    assert_eq!((taken[0].applied, taken[0].listed), (-3, 0));

    for _ in 0..150 {
        connector
            .adjust(&[Adjustment {
                id: uuid::Uuid::new_v4().to_string(),
                sku: "P".into(),
                delta: 1,
            }])
            .await
            .unwrap();
        assert!(market.buy("P", 1));
    }
    let page = connector.orders(None).await.unwrap();
    assert_eq!(page.orders.len(), 100, "a page at a time");
    let rest = connector.orders(page.next.as_deref()).await.unwrap();
    assert_eq!(rest.orders.len(), 51);
    let end = connector.orders(rest.next.as_deref()).await.unwrap();
    assert!(end.orders.is_empty());

    let wrong = HttpConnector::new(&base, "wrong", Duration::from_secs(5)).unwrap();
    assert!(wrong.orders(None).await.is_err());
}
