//! The order event fan-out (seed 004): three independent consumer groups, retries with
//! backoff, dead letters an operator can retry or delete, idempotent consumers, per-key
//! order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use matsuri_bus::{Bus, Consumer, Event, Subscription};
use matsuri_mail::testing::SmtpSink;
use matsuri_mail::{Mailer, OutgoingMail};
use matsuri_shop::{Contact, Customers, OrderMailer};

use crate::helpers::{Backend, TestApp, order_body, spawn_app, spawn_app_with};

crate::bus_backend_tests!(
    a_failing_group_is_isolated_and_its_dead_letter_retries_once,
    attempts_follow_the_group_setting_and_deleted_letters_stay_dead,
    committed_events_survive_a_relay_that_never_ran,
    redelivery_changes_nothing_twice,
    events_of_one_key_are_handled_in_order,
    the_running_bus_hands_every_event_over_once_in_key_order,
    two_running_buses_hand_every_event_over_once_in_key_order,
    a_worker_stuck_past_its_turn_is_taken_over_and_nothing_is_skipped,
    admin_api_refuses_bad_input,
    handled_events_are_pruned_and_dead_ones_kept,
    a_batch_is_handled_together_or_one_event_at_a_time,
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
    drain_with(app, &app.components.bus).await;
}

/// Runs passes of `bus` on the app, moving the clock past any backoff, until nothing is
/// left to do.
async fn drain_with(app: &TestApp, bus: &Bus) {
    for _ in 0..100 {
        let worked = bus.run_once().await.unwrap();
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

/// Records the order in which events arrive; fails the first attempt of every fifth.
struct Recorder {
    seen: Mutex<Vec<(String, i64)>>,
    failed_once: Mutex<std::collections::HashSet<String>>,
}

#[async_trait::async_trait]
impl Consumer for Recorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let seq = event.payload["seq"].as_i64().unwrap_or(-1);
        if seq % 5 == 3 && self.failed_once.lock().unwrap().insert(event.id.clone()) {
            anyhow::bail!("failing the first attempt of {seq}");
        }
        self.seen
            .lock()
            .unwrap()
            .push((event.key.clone().unwrap_or_default(), seq));
        Ok(())
    }
}

async fn events_of_one_key_are_handled_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bus, recorder) = recording_bus(&app, "test.sequence");
    let relay = async {
        for _ in 0..30 {
            bus.run_once().await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(publish_keyed(&app, "test.sequence"), relay);
    drain_with(&app, &bus).await;
    assert_each_once_in_key_order(&recorder);
}

/// A bus of its own on the app's database and transport, with a [`Recorder`] subscribed
/// to `topic`.
fn recording_bus(app: &TestApp, topic: &'static str) -> (Bus, Arc<Recorder>) {
    let recorder = Arc::new(Recorder {
        seen: Mutex::new(Vec::new()),
        failed_once: Mutex::new(Default::default()),
    });
    let bus = Bus::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        vec![Subscription::new(topic, "recorder", recorder.clone())],
    )
    .with_transport(app.components.bus.transport().clone());
    (bus, recorder)
}

/// Eight producers publish 25 events each to `topic`, concurrently, each under its own
/// key; the payload's `seq` counts each key's events.
async fn publish_keyed(app: &TestApp, topic: &'static str) {
    let producers = (0..8).map(|p| {
        let db = app.components.db.clone();
        async move {
            for seq in 0..25_i64 {
                let mut tx = db.begin().await.unwrap();
                matsuri_bus::publish(
                    &mut tx,
                    0,
                    topic,
                    Some(&format!("key-{p}")),
                    &json!({"seq": seq}),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }
    });
    futures::future::join_all(producers).await;
}

/// The recorder saw every event of [`publish_keyed`] once, each key's in order.
fn assert_each_once_in_key_order(recorder: &Recorder) {
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 200, "every event once");
    for p in 0..8 {
        let key = format!("key-{p}");
        let order: Vec<i64> = seen
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(order, (0..25).collect::<Vec<_>>(), "{key} in order");
    }
}

/// The bus as `serve` and `worker` run it (on JetStream, a follower per subscription
/// reading a continuous stream), with producers publishing while it runs.
async fn the_running_bus_hands_every_event_over_once_in_key_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bus, recorder) = recording_bus(&app, "test.running");
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(bus.run(stop.clone()));
    publish_keyed(&app, "test.running").await;
    // Every fifth event fails once; moving the clock lets its retry come due.
    until_all_seen(&app, &recorder).await;
    stop.cancel();
    running.await.unwrap();
    assert_each_once_in_key_order(&recorder);
}

/// Waits, moving the clock so retries come due, until the recorder has seen every event
/// of [`publish_keyed`].
async fn until_all_seen(app: &TestApp, recorder: &Recorder) {
    for _ in 0..600 {
        if recorder.seen.lock().unwrap().len() >= 200 {
            break;
        }
        app.clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a stray second delivery to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Two workers (as in two processes) on one subscription: one holds its turn at a time,
/// so every event is handed over once and each key's in order.
async fn two_running_buses_hand_every_event_over_once_in_key_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bus, recorder) = recording_bus(&app, "test.two");
    let other = Bus::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        bus.subscriptions().to_vec(),
    )
    .with_transport(app.components.bus.transport().clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = [
        tokio::spawn(bus.run(stop.clone())),
        tokio::spawn(other.run(stop.clone())),
    ];
    publish_keyed(&app, "test.two").await;
    until_all_seen(&app, &recorder).await;
    stop.cancel();
    for bus in running {
        bus.await.unwrap();
    }
    assert_each_once_in_key_order(&recorder);
}

/// On JetStream: a publisher that stopped after sending the log, before recording how far
/// the stream has stored it, sends the same runs of events again when it starts over; the
/// stream keeps each run once, so every event is still handed over once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_published_again_reaches_the_stream_once() {
    let Some(backend) = Backend::nats() else {
        return;
    };
    let app = spawn_app(backend).await;
    let (bus, recorder) = recording_bus(&app, "test.again");
    publish_keyed(&app, "test.again").await;
    bus.run_once().await.unwrap();
    sqlx::query("UPDATE bus_nats_published SET seq = 0")
        .execute(app.components.db.writer())
        .await
        .unwrap();
    drain_with(&app, &bus).await;
    assert_each_once_in_key_order(&recorder);
}

/// Takes events and never finishes them, until let go.
struct Stuck {
    entered: AtomicUsize,
    let_go: tokio_util::sync::CancellationToken,
}

#[async_trait::async_trait]
impl Consumer for Stuck {
    async fn handle(&self, _event: &Event) -> anyhow::Result<()> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.let_go.cancelled().await;
        Ok(())
    }
}

/// A worker hangs with a batch in hand (as a process that froze or died would). Once its
/// turn has run out another takes over and hands every event over, each key's in order;
/// none of what the first had received is skipped, and when the first wakes up it
/// records nothing.
async fn a_worker_stuck_past_its_turn_is_taken_over_and_nothing_is_skipped(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bus, recorder) = recording_bus(&app, "test.takeover");
    let stuck = Arc::new(Stuck {
        entered: AtomicUsize::new(0),
        let_go: tokio_util::sync::CancellationToken::new(),
    });
    let frozen = Bus::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        vec![
            Subscription::new("test.takeover", "recorder", stuck.clone())
                .with_deadline(Duration::from_secs(60)),
        ],
    )
    .with_transport(app.components.bus.transport().clone());
    let stop_frozen = tokio_util::sync::CancellationToken::new();
    let frozen = tokio::spawn(frozen.run(stop_frozen.clone()));
    publish_keyed(&app, "test.takeover").await;
    for _ in 0..200 {
        if stuck.entered.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        stuck.entered.load(Ordering::SeqCst) > 0,
        "the first worker took a batch"
    );
    // Past the frozen worker's turn (four times its 60 s deadline).
    app.clock.advance(Duration::from_secs(300));
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(bus.run(stop.clone()));
    until_all_seen(&app, &recorder).await;
    stuck.let_go.cancel();
    stop_frozen.cancel();
    frozen.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    running.await.unwrap();
    assert_each_once_in_key_order(&recorder);
    let processed: i64 = sqlx::query_scalar(
        "SELECT processed FROM bus_cursors WHERE group_name = 'recorder' AND topic = 'test.takeover'",
    )
    .fetch_one(app.components.db.reader())
    .await
    .unwrap();
    assert_eq!(
        processed, 200,
        "only the worker holding the turn recorded its batches"
    );
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

async fn handled_events_are_pruned_and_dead_ones_kept(backend: Backend) {
    let port = free_port();
    let app = spawn_app_with(backend, |s| {
        mail_server_at(s, port);
    })
    .await;
    paid_order(&app).await;
    drain(&app).await;
    let bus = &app.components.bus;
    let week = 7 * 86_400_000;
    let now = || matsuri_core::Clock::now_ms(&*app.clock);
    assert_eq!(
        bus.prune(now() - week).await.unwrap(),
        0,
        "recent events stay"
    );
    app.clock.advance(Duration::from_secs(8 * 86_400));
    assert_eq!(
        bus.prune(now() - week).await.unwrap(),
        1,
        "order.placed goes"
    );
    // order.paid stays: the notification group's dead letter still needs it.
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM bus_applied").await, 0);
    let staff = app.staff_token().await;
    let dead = app.get("/admin/dead-letters", Some(&staff)).await;
    assert_eq!(dead.body["items"][0]["payload"]["order"]["status"], "paid");
}

/// Records what it is given; any batch holding a `poison` event fails, and so does that
/// event alone.
#[derive(Default)]
struct Batcher {
    seen: Mutex<Vec<i64>>,
    batches: Mutex<usize>,
}

fn number_of(event: &Event) -> i64 {
    event.payload["n"].as_i64().unwrap_or(-1)
}

fn poison(event: &Event) -> bool {
    event.payload["poison"] == true
}

#[async_trait::async_trait]
impl Consumer for Batcher {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        anyhow::ensure!(!poison(event), "poison");
        self.seen.lock().unwrap().push(number_of(event));
        Ok(())
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        if events.iter().any(|e| poison(e)) {
            return Some(Err(anyhow::anyhow!("a poison event in the batch")));
        }
        *self.batches.lock().unwrap() += 1;
        self.seen
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| number_of(e)));
        Some(Ok(()))
    }
}

async fn a_batch_is_handled_together_or_one_event_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let batcher = Arc::new(Batcher::default());
    let bus = Bus::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        vec![Subscription::new("test.batch", "batcher", batcher.clone()).with_max_attempts(2)],
    )
    .with_transport(app.components.bus.transport().clone());
    let publish = |from: i64, poisoned: Option<i64>| {
        let db = app.components.db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            for n in from..from + 10 {
                let key = format!("key-{}", n % 3);
                let payload = json!({"n": n, "poison": Some(n) == poisoned});
                matsuri_bus::publish(&mut tx, 0, "test.batch", Some(&key), &payload)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    let drain = || async {
        for _ in 0..20 {
            bus.run_once().await.unwrap();
            app.clock.advance(Duration::from_secs(600));
        }
    };

    // A batch without a bad event is handed over in one piece.
    publish(0, None).await;
    drain().await;
    assert_eq!(*batcher.batches.lock().unwrap(), 1);
    assert_eq!(*batcher.seen.lock().unwrap(), (0..10).collect::<Vec<_>>());

    // With one, the batch fails as a whole and its events go one at a time: the bad one
    // ends dead, and the rest of its key waits behind it and then follows, in order.
    publish(10, Some(13)).await;
    drain().await;
    assert_eq!(*batcher.batches.lock().unwrap(), 1);
    let seen = batcher.seen.lock().unwrap().clone();
    let mut later: Vec<i64> = seen[10..].to_vec();
    let key_of_poison: Vec<i64> = later.iter().copied().filter(|n| n % 3 == 1).collect();
    assert_eq!(key_of_poison, vec![10, 16, 19], "the poisoned key in order");
    later.sort_unstable();
    assert_eq!(later, vec![10, 11, 12, 14, 15, 16, 17, 18, 19]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM bus_parked WHERE status = 'dead'")
            .await,
        1
    );
}
