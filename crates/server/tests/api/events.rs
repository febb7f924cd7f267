//! The order event fan-out (seed 004) as the shop's consumers live it: three independent
//! consumer groups, retries with backoff, dead letters an operator retries or deletes
//! through the admin API, consumers that change nothing twice. The bus's own story (key
//! order, two workers, a frozen worker, batches, pruning) is in `crates/bus/tests`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use matsuri_bus::{Bus, Consumer, Event};
use matsuri_mail::testing::SmtpSink;
use matsuri_mail::{Mailer, OutgoingMail};
use matsuri_shop::{Contact, Customers, OrderMailer};

use crate::helpers::{Backend, TestApp, order_body, spawn_app, spawn_app_with};

crate::bus_backend_tests!(
    a_failing_group_is_isolated_and_its_dead_letter_retries_once,
    attempts_follow_the_group_setting_and_deleted_letters_stay_dead,
    committed_events_survive_a_relay_that_never_ran,
    redelivery_changes_nothing_twice,
    admin_api_refuses_bad_input,
    a_mail_batch_that_fails_half_way_sends_nothing_twice,
);

/// Sends mail over SMTP to `port` on this machine.
fn mail_server_at(settings: &mut matsuri_core::Settings, port: u16) {
    settings.mail_url = Some(matsuri_core::config::Secret::new(format!(
        "smtp://127.0.0.1:{port}"
    )));
}

/// A local port with nothing listening on it (yet).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Places one paid order of two lines and returns its number.
async fn paid_order(app: &TestApp) -> String {
    let tee = app.create_product("TEE", 3_000, 10).await;
    let towel = app.create_product("TOWEL", 1_999, 10).await;
    let me = app.register("events@example.com").await;
    let items = json!([{"product_id": tee, "quantity": 2}, {"product_id": towel, "quantity": 1}]);
    let res = app
        .post("/orders", Some(&me), order_body("tok_visa", Some(items)))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.body["number"].as_str().unwrap().to_owned()
}

/// Runs the app's bus passes, moving the clock past any backoff, until nothing is left to
/// do.
async fn drain(app: &TestApp) {
    for _ in 0..100 {
        let worked = app.components.bus.run_once().await.unwrap();
        let waiting = app
            .count("SELECT COUNT(*) FROM bus_parked WHERE status = 'pending'")
            .await;
        if worked == 0 && waiting == 0 {
            return;
        }
        app.clock.advance(Duration::from_secs(600));
    }
    panic!("the bus did not drain");
}

async fn consumers(app: &TestApp, staff: &str) -> serde_json::Value {
    let res = app.get("/admin/consumers", Some(staff)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let mut by_group = serde_json::Map::new();
    for item in res.body["items"].as_array().unwrap() {
        by_group.insert(item["group"].as_str().unwrap().to_owned(), item.clone());
    }
    serde_json::Value::Object(by_group)
}

async fn a_failing_group_is_isolated_and_its_dead_letter_retries_once(backend: Backend) {
    let port = free_port();
    let app = spawn_app_with(backend, |s| {
        mail_server_at(s, port);
    })
    .await;
    let staff = app.staff_token().await;
    let number = paid_order(&app).await;

    // The mail server is down: notification fails three times with growing waits.
    app.components.bus.run_once().await.unwrap();
    let mut waits = Vec::new();
    for attempt in 1..=3 {
        let (attempts, next): (i64, i64) = sqlx::query_as(
            "SELECT attempts, next_attempt_at FROM bus_parked WHERE group_name = 'notification'",
        )
        .fetch_one(app.components.db.reader())
        .await
        .unwrap();
        assert_eq!(attempts, attempt);
        waits.push(next - matsuri_core::Clock::now_ms(&*app.clock));
        app.clock.advance(Duration::from_secs(600));
        app.components.bus.run_once().await.unwrap();
    }
    assert!(
        (250..=500).contains(&waits[0]) && (500..=1000).contains(&waits[1]),
        "{waits:?}"
    );
    assert!(waits[1] >= waits[0], "backoff grows: {waits:?}");

    // Inventory and billing handled the same event meanwhile.
    let stats = consumers(&app, &staff).await;
    assert_eq!(stats["inventory"]["processed"], 1);
    assert_eq!(stats["billing"]["processed"], 1);
    assert_eq!(stats["notification"]["processed"], 0);
    assert_eq!(stats["notification"]["failed"], 3);
    assert_eq!(stats["notification"]["dead"], 1);
    assert_eq!(stats["notification"]["lag"], 0);
    let invoices = app
        .get(&format!("/admin/invoices?order={number}"), Some(&staff))
        .await;
    assert_eq!(invoices.body["items"][0]["subtotal"], 7_999);
    assert_eq!(invoices.body["items"][0]["tax"], 799);
    assert_eq!(invoices.body["items"][0]["total"], 8_798);
    assert_eq!(invoices.body["items"][0]["status"], "pending");
    assert_eq!(invoices.body["items"][0]["lines"][0]["line_total"], 6_000);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inventory_ledger WHERE reason = 'sale'")
            .await,
        2
    );

    let dead = app
        .get("/admin/dead-letters?group=notification", Some(&staff))
        .await;
    let letters = dead.body["items"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["topic"], "order.paid");
    assert!(!letters[0]["last_error"].as_str().unwrap().is_empty());
    assert_eq!(letters[0]["payload"]["order"]["number"], number.as_str());
    let id = letters[0]["id"].as_str().unwrap().to_owned();

    // The mail server is back: a retry delivers exactly once.
    let sink = SmtpSink::start_on(port).await;
    let retry = app
        .request(
            Method::POST,
            &format!("/admin/dead-letters/{id}/retry"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(retry.status, StatusCode::ACCEPTED);
    drain(&app).await;
    assert_eq!(
        sink.received().len(),
        2,
        "one mail to the customer, one to the shop"
    );
    let stats = consumers(&app, &staff).await;
    assert_eq!(stats["notification"]["processed"], 1);
    assert_eq!(stats["notification"]["dead"], 0);
    let again = app
        .request(
            Method::POST,
            &format!("/admin/dead-letters/{id}/retry"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let mails = app
        .get("/admin/mails?to=events@example.com", Some(&staff))
        .await;
    assert_eq!(mails.body["items"].as_array().unwrap().len(), 1);
}

async fn attempts_follow_the_group_setting_and_deleted_letters_stay_dead(backend: Backend) {
    let port = free_port();
    let app = spawn_app_with(backend, |s| {
        mail_server_at(s, port);
        s.bus.group_max_attempts.insert("notification".into(), 5);
    })
    .await;
    let staff = app.staff_token().await;
    paid_order(&app).await;
    drain(&app).await;
    let dead = app.get("/admin/dead-letters", Some(&staff)).await;
    let letters = dead.body["items"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 5, "exactly max_attempts tries");
    let id = letters[0]["id"].as_str().unwrap().to_owned();

    let deleted = app
        .request(
            Method::DELETE,
            &format!("/admin/dead-letters/{id}"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let after = app.get("/admin/dead-letters", Some(&staff)).await;
    assert_eq!(after.body["items"].as_array().unwrap().len(), 0);
    drain(&app).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM bus_parked WHERE group_name = 'notification' AND status = 'dead'"
        )
        .await,
        1,
        "a deleted dead letter is not retried"
    );
    let twice = app
        .request(
            Method::DELETE,
            &format!("/admin/dead-letters/{id}"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
}

async fn committed_events_survive_a_relay_that_never_ran(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let number = paid_order(&app).await;
    // The process dies after the commit, before any relay: the events wait in the outbox.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE seq IS NULL")
            .await,
        2
    );
    let stats = consumers(&app, &staff).await;
    assert_eq!(stats["billing"]["lag"], 1);
    // A new bus (a restarted process) on the same database delivers them.
    let restarted = Bus::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        app.components.bus.subscriptions().to_vec(),
    )
    .with_transport(app.components.bus.transport().clone());
    for _ in 0..3 {
        restarted.run_once().await.unwrap();
    }
    let invoices = app
        .get(&format!("/admin/invoices?order={number}"), Some(&staff))
        .await;
    assert_eq!(invoices.body["items"].as_array().unwrap().len(), 1);
    let stats = consumers(&app, &staff).await;
    for group in ["inventory", "notification", "billing"] {
        assert_eq!(stats[group]["processed"], 1, "{group}");
        assert_eq!(stats[group]["lag"], 0, "{group}");
    }
}

async fn redelivery_changes_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    paid_order(&app).await;
    drain(&app).await;
    let mails = || {
        std::fs::read_dir(app.data_dir.join("mail"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(mails(), 2);
    // Every event arrives at every consumer twice more, as a redelivery would bring it:
    // once one at a time, once as a batch holding each event twice.
    for event in &outbox(&app).await {
        for sub in app
            .components
            .bus
            .subscriptions()
            .iter()
            .filter(|s| s.topic == event.topic)
        {
            sub.consumer.handle(event).await.unwrap();
            if let Some(outcome) = sub.consumer.handle_all(&[event, event]).await {
                outcome.unwrap();
            }
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM invoices").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM invoice_lines").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM inventory_ledger").await, 2);
    assert_eq!(mails(), 2);
}

/// Every event in the outbox, oldest first.
async fn outbox(app: &TestApp) -> Vec<Event> {
    let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT id, topic, event_key, payload, created_at FROM outbox ORDER BY created_at, id",
    )
    .fetch_all(app.components.db.reader())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, topic, key, payload, created_at)| Event {
            id,
            topic,
            key,
            payload: serde_json::from_str(&payload).unwrap(),
            created_at,
        })
        .collect()
}

/// Keeps the subject of every mail it sends; fails every send once `fail_from` are out.
struct FlakyMailer {
    subjects: Mutex<Vec<String>>,
    fail_from: AtomicUsize,
}

#[async_trait::async_trait]
impl Mailer for FlakyMailer {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        let mut subjects = self.subjects.lock().unwrap();
        if subjects.len() >= self.fail_from.load(Ordering::SeqCst) {
            anyhow::bail!("the mail server hung up");
        }
        subjects.push(mail.subject.clone());
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

struct OneFan;

#[async_trait::async_trait]
impl Customers for OneFan {
    async fn contact(&self, _user_id: &str) -> anyhow::Result<Option<Contact>> {
        Ok(Some(Contact {
            email: "fan@example.com".to_owned(),
            name: "Fan".to_owned(),
        }))
    }
}

async fn a_mail_batch_that_fails_half_way_sends_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let tee = app.create_product("TEE", 3_000, 10).await;
    let me = app.register("mails@example.com").await;
    for _ in 0..3 {
        let items = json!([{"product_id": tee, "quantity": 1}]);
        let res = app
            .post("/orders", Some(&me), order_body("tok_visa", Some(items)))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let paid: Vec<Event> = outbox(&app)
        .await
        .into_iter()
        .filter(|e| e.topic == "order.paid")
        .collect();
    assert_eq!(paid.len(), 3);
    let batch: Vec<&Event> = paid.iter().collect();
    let mailer = Arc::new(FlakyMailer {
        subjects: Mutex::default(),
        fail_from: AtomicUsize::new(3),
    });
    let consumer = OrderMailer::new(
        app.components.db.clone(),
        app.clock.clone(),
        mailer.clone(),
        Arc::new(OneFan),
        "shop@example.com".to_owned(),
        Duration::from_secs(30),
    );

    // The server hangs up after three of the six mails: the batch fails.
    let failed = consumer.handle_all(&batch).await.unwrap().unwrap_err();
    assert!(failed.to_string().contains("hung up"), "{failed:#}");
    assert_eq!(mailer.subjects.lock().unwrap().len(), 3);

    // Back up: the bus hands the events over one at a time, then a redelivery brings the
    // whole batch again. Only the three unsent mails go out.
    mailer.fail_from.store(usize::MAX, Ordering::SeqCst);
    for event in &paid {
        consumer.handle(event).await.unwrap();
    }
    consumer.handle_all(&batch).await.unwrap().unwrap();
    let subjects = mailer.subjects.lock().unwrap().clone();
    let distinct: HashSet<&String> = subjects.iter().collect();
    assert_eq!(subjects.len(), 6, "{subjects:?}");
    assert_eq!(distinct.len(), 6, "no mail twice: {subjects:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM order_mails").await, 6);
}

async fn admin_api_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff_token().await;
    let customer = app.register("nosy@example.com").await;
    for (method, path) in [
        (Method::GET, "/admin/consumers"),
        (Method::GET, "/admin/dead-letters"),
        (Method::POST, "/admin/dead-letters/x/retry"),
        (Method::DELETE, "/admin/dead-letters/x"),
        (Method::GET, "/admin/invoices"),
        (Method::GET, "/admin/mails"),
    ] {
        assert_eq!(
            app.request(method.clone(), path, Some(&customer), None)
                .await
                .status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.request(method, path, None, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let unknown = app
        .request(
            Method::POST,
            "/admin/dead-letters/0190f000-0000-7000-8000-000000000000/retry",
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "not_found");
    let unknown = app
        .request(
            Method::DELETE,
            "/admin/dead-letters/nope",
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/admin/dead-letters?limit=0", Some(&staff))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/admin/mails?cursor=-4", Some(&staff)).await.status,
        StatusCode::BAD_REQUEST
    );
}
