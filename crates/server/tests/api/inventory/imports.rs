//! Imports: each bad file refused whole with its rows' errors and nothing changed, the same
//! file applied once, and net stock exactly as seed 002 defines it.

use reqwest::StatusCode;
use serde_json::json;

use super::{import, stock, today};
use crate::helpers::{Backend, one_line, spawn_app_with};

crate::coord_backend_tests!(
    net_stock_follows_the_seeds_formula,
    bad_files_are_refused_whole,
    the_same_file_applies_once
);

/// Two stores, the online one `main`.
async fn app(backend: Backend) -> crate::helpers::TestApp {
    spawn_app_with(backend, |s| {
        s.inventory.stores = vec!["main".into(), "annex".into()];
    })
    .await
}

async fn net_stock_follows_the_seeds_formula(backend: Backend) {
    let app = app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("BOOK-1", 1_000, 0).await;
    let day = today(&app);
    let yesterday = {
        let ms = matsuri_core::Clock::now_ms(app.clock.as_ref()) - 86_400_000;
        let d = matsuri_core::timefmt::yyyymmdd(ms);
        format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8])
    };
    let book = format!(
        "store,sku,quantity,as_of\nmain,BOOK-1,40,{yesterday}\nmain,BOOK-1,50,{day}\nannex,BOOK-1,99,{day}\n"
    );
    let res = import(&app, &staff, "book", book, Some("book-1")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["rows"], 3);
    assert_eq!(res.body["kind"], "book");
    // A sale before the latest count is in it already; one after is not.
    let sales = format!(
        "store,sku,quantity,at\nmain,BOOK-1,100,{yesterday}T10:00:00Z\nmain,BOOK-1,3,{day}T00:00:01Z\nannex,BOOK-1,5,{day}T00:00:01Z\n"
    );
    let res = import(&app, &staff, "sales", sales, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let purchases = format!("store,sku,quantity,at\nmain,BOOK-1,10,{day}T00:00:02+00:00\n");
    assert_eq!(
        import(&app, &staff, "purchases", purchases, None)
            .await
            .status,
        StatusCode::CREATED
    );
    let adjustments = "store,sku,reason,quantity\nmain,BOOK-1,sample,2\nmain,BOOK-1,damaged,1\n";
    assert_eq!(
        import(&app, &staff, "adjustments", adjustments, None)
            .await
            .status,
        StatusCode::CREATED
    );
    // 50 − 3 + 10 − (2 + 1) = 54, all of it on sale.
    let figures = stock(&app, &staff, "BOOK-1").await;
    assert_eq!(figures["book"], 50, "{figures}");
    assert_eq!(figures["sold"], 3);
    assert_eq!(figures["purchased"], 10);
    assert_eq!(figures["samples"], 3);
    assert_eq!(figures["unshipped"], 0);
    assert_eq!(figures["net"], 54);
    assert_eq!(figures["allocatable"], 54);
    assert_eq!(app.available(&product).await, 54);

    // An own order paid and not shipped: first held by its delta, then by the ledger.
    let buyer = app.register("reader@example.com").await;
    let res = app
        .post("/orders", Some(&buyer), one_line("tok_visa", &product, 4))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let figures = stock(&app, &staff, "BOOK-1").await;
    assert_eq!(
        (
            &figures["net"],
            &figures["reserved"],
            &figures["allocatable"]
        ),
        (&json!(54), &json!(4), &json!(50))
    );
    app.components.bus.run_once().await.unwrap();
    app.components.stock.sync().await.unwrap();
    let figures = stock(&app, &staff, "BOOK-1").await;
    assert_eq!(figures["unshipped"], 4, "{figures}");
    assert_eq!(
        (
            &figures["net"],
            &figures["reserved"],
            &figures["allocatable"]
        ),
        (&json!(50), &json!(0), &json!(50))
    );
    assert!(figures["synced_at"].is_string());
    assert_eq!(app.available(&product).await, 50);

    // Staff and nobody else; an unknown SKU is 404.
    let res = app.get("/admin/inventory/stock/BOOK-1", Some(&buyer)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app.get("/admin/inventory/stock/NOPE", Some(&staff)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

async fn bad_files_are_refused_whole(backend: Backend) {
    let app = app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("BOOK-1", 1_000, 7).await;
    let day = today(&app);
    let cases: Vec<(&str, Vec<u8>, u64, &str)> = vec![
        (
            "book",
            format!("store,sku,quantity,as_of\nmain,BOOK-1,5,{day}\nmain,NOPE,1,{day}\n").into(),
            3,
            "unknown SKU",
        ),
        (
            "book",
            format!("store,sku,quantity,as_of\nmars,BOOK-1,5,{day}\n").into(),
            2,
            "unknown store",
        ),
        (
            "sales",
            format!("store,sku,quantity,at\nmain,BOOK-1,ten,{day}T01:00:00Z\n").into(),
            2,
            "whole number",
        ),
        (
            "book",
            format!("store,sku,quantity,as_of\nmain,BOOK-1,-1,{day}\n").into(),
            2,
            "negative",
        ),
        (
            "book",
            format!("shop,sku,quantity,as_of\nmain,BOOK-1,5,{day}\n").into(),
            1,
            "header",
        ),
        (
            "purchases",
            [
                b"store,sku,quantity,at\nmain,BOOK-1,1,".as_slice(),
                b"\xff\xfe\n",
            ]
            .concat(),
            2,
            "UTF-8",
        ),
        (
            "book",
            format!("store,sku,quantity,as_of\nmain,BOOK-1,5,{day}\nmain,BOOK-1,6,{day}\n").into(),
            3,
            "repeats line 2",
        ),
        (
            "adjustments",
            b"store,sku,reason,quantity\nmain,BOOK-1,lost,1\nmain,BOOK-1\n".to_vec(),
            2,
            "reason",
        ),
        (
            "sales",
            b"store,sku,quantity,at\nmain,BOOK-1,1,yesterday\n".to_vec(),
            2,
            "time",
        ),
    ];
    for (kind, file, line, message) in cases {
        let res = import(&app, &staff, kind, file, None).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
        assert_eq!(res.code(), "invalid_import");
        let errors = res.body["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["line"] == line && e["message"].as_str().unwrap().contains(message)),
            "{message} on line {line}: {}",
            res.text
        );
    }
    // Every error of a file is listed, not only the first.
    let res = import(
        &app,
        &staff,
        "adjustments",
        "store,sku,reason,quantity\nmain,BOOK-1,lost,1\nmain,BOOK-1\nmain,BOOK-1,sample,-2\n",
        None,
    )
    .await;
    let lines: Vec<_> = res.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 4], "{}", res.text);
    // Nothing was applied by any of them.
    assert_eq!(app.count("SELECT COUNT(*) FROM inventory_imports").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inventory_moves").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inventory_adjustments")
            .await,
        0
    );
    assert_eq!(stock(&app, &staff, "BOOK-1").await["book"], 7);
    assert_eq!(app.available(&product).await, 7);

    // Authentication first, then the kind.
    let customer = app.register("nosy@example.com").await;
    let file = format!("store,sku,quantity,as_of\nmain,BOOK-1,5,{day}\n");
    let res = import(&app, &customer, "book", file.clone(), None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = import(&app, &staff, "stocktake", file, None).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.code(), "validation_failed");
}

async fn the_same_file_applies_once(backend: Backend) {
    let app = app(backend).await;
    let staff = app.staff_token().await;
    let product = app.create_product("BOOK-1", 1_000, 20).await;
    let day = today(&app);
    let sales = format!("store,sku,quantity,at\nmain,BOOK-1,2,{day}T00:00:01Z\n");
    let first = import(&app, &staff, "sales", sales.clone(), Some("sales-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // Again with its key, again without a key (the same checksum): the first import.
    for key in [Some("sales-1"), None, Some("sales-2")] {
        let again = import(&app, &staff, "sales", sales.clone(), key).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
        assert_eq!(again.body["import_id"], first.body["import_id"]);
    }
    // The key with another file is refused.
    let other = format!("store,sku,quantity,at\nmain,BOOK-1,1,{day}T00:00:02Z\n");
    let res = import(&app, &staff, "sales", other, Some("sales-1")).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.code(), "idempotency_key_reused");
    assert_eq!(app.count("SELECT COUNT(*) FROM inventory_moves").await, 1);
    assert_eq!(stock(&app, &staff, "BOOK-1").await["sold"], 2);
    assert_eq!(app.available(&product).await, 18);

    // Two staff sending one file at once: applied once.
    let file = format!("store,sku,quantity,at\nmain,BOOK-1,1,{day}T00:00:03Z\n");
    let (a, b) = tokio::join!(
        import(&app, &staff, "purchases", file.clone(), None),
        import(&app, &staff, "purchases", file, None)
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{} {}",
        a.text,
        b.text
    );
    assert_eq!(a.body["import_id"], b.body["import_id"]);
    assert_eq!(stock(&app, &staff, "BOOK-1").await["purchased"], 1);
}
