//! `spawn_app`: a real matsuri on port 0 with its own database, plus a small typed client.

use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use matsuri_core::config::Secret;
use matsuri_core::{ManualClock, Settings};
use matsuri_server::{Application, Components};
pub use matsuri_testkit::service_url;
use matsuri_testkit::{Cleanup, scratch_database, unique_name};

pub const STAFF_EMAIL: &str = "staff@test.localhost";
pub const STAFF_PASSWORD: &str = "staff-password";
pub const PASSWORD: &str = "customer-password";

/// The database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
    /// SQLite for the database, JetStream at this URL for the event bus.
    Nats(String),
    /// PostgreSQL (admin URL) for the database, Redis (URL) for the `coord` port.
    PostgresRedis(String, String),
}

impl Backend {
    /// PostgreSQL when `MATSURI_TEST_POSTGRES_URL` is set; in CI its absence is a failure.
    pub fn postgres() -> Option<Backend> {
        service_url("MATSURI_TEST_POSTGRES_URL").map(Backend::Postgres)
    }

    /// PostgreSQL and Redis when both test URLs are set; in CI their absence is a failure.
    pub fn postgres_redis() -> Option<Backend> {
        let postgres = service_url("MATSURI_TEST_POSTGRES_URL")?;
        let redis = service_url("MATSURI_TEST_REDIS_URL")?;
        Some(Backend::PostgresRedis(postgres, redis))
    }

    /// JetStream when `MATSURI_TEST_NATS_URL` is set; in CI its absence is a failure.
    pub fn nats() -> Option<Backend> {
        service_url("MATSURI_TEST_NATS_URL").map(Backend::Nats)
    }
}

/// Runs each named `async fn(Backend)` once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// Runs each named `async fn(Backend)` on SQLite, PostgreSQL, and SQLite with the
/// JetStream bus: the event bus's conformance story.
#[macro_export]
macro_rules! bus_backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!($($name),*);
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::nats() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// Runs each named `async fn(Backend)` on SQLite with the in-process `coord`, and on
/// PostgreSQL with Redis as `coord`: the ticketing story.
#[macro_export]
macro_rules! coord_backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::postgres_redis() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// Deletes the JetStream stream of `prefix` when the test ends.
fn scratch_stream(url: &str, prefix: &str) -> Cleanup {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    Cleanup::new(async move {
        if let Ok(link) = matsuri_bus::NatsLink::connect(&url, &prefix).await {
            let _ = link.delete_stream().await;
        }
    })
}

/// Deletes the Redis keys under `prefix` when the test ends.
fn scratch_keys(url: &str, prefix: &str) -> Cleanup {
    let (url, pattern) = (url.to_owned(), format!("{prefix}:*"));
    Cleanup::new(async move {
        let Ok(client) = redis::Client::open(url) else {
            return;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    })
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub components: Components,
    pub clock: Arc<ManualClock>,
    pub data_dir: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub settings: Settings,
    _dir: Option<tempfile::TempDir>,
    _cleanups: Vec<Cleanup>,
}

/// Starts matsuri on port 0 with a fresh database. Background workers are off: tests run
/// the bus and the sweeps themselves, so nothing happens behind their back.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    static TLS: Once = Once::new();
    TLS.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite_url = format!("sqlite://{}", dir.path().join("matsuri.db").display());
    let mut cleanups = Vec::new();
    let url = match &backend {
        Backend::Sqlite | Backend::Nats(_) => sqlite_url,
        Backend::Postgres(admin) | Backend::PostgresRedis(admin, _) => {
            let (url, dropped) = scratch_database(admin).await;
            cleanups.push(dropped);
            url
        }
    };
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(Secret::new(url)),
        workers: false,
        admin_email: Some(STAFF_EMAIL.into()),
        admin_password: Some(Secret::new(STAFF_PASSWORD)),
        ..Settings::default()
    };
    settings.auth.token_secret = Some(Secret::new("a-test-secret-that-is-long-enough-0123"));
    // Cheap hashes: tests register hundreds of users; the cost is not what they test.
    settings.auth.argon2_memory_kib = 64;
    settings.auth.argon2_iterations = 1;
    settings.database.max_connections = 8;
    // Tests read the seat map right after changing it.
    settings.tickets.seat_map_max_age_ms = 0;
    match &backend {
        Backend::Nats(nats) => {
            let prefix = unique_name();
            cleanups.push(scratch_stream(nats, &prefix));
            settings.bus_url = nats.clone();
            settings.bus.nats_prefix = prefix;
        }
        Backend::PostgresRedis(_, redis) => {
            let prefix = unique_name();
            cleanups.push(scratch_keys(redis, &prefix));
            settings.coord_url = redis.clone();
            settings.coord_prefix = prefix;
        }
        Backend::Sqlite | Backend::Postgres(_) => {}
    }
    tweak(&mut settings);

    let clock = Arc::new(ManualClock::starting_now());
    let mut app = start(settings, clock).await;
    if let Backend::Nats(_) = backend {
        assert!(matches!(
            app.components.bus.transport(),
            matsuri_bus::Transport::Nats(_)
        ));
    }
    app._dir = Some(dir);
    app._cleanups = cleanups;
    app
}

/// Builds and serves an application; the caller attaches what must be cleaned up.
async fn start(settings: Settings, clock: Arc<ManualClock>) -> TestApp {
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings.clone(), clock.clone())
        .await
        .expect("the application builds");
    let addr = app.local_addr().expect("a bound address");
    let components = app.components().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client"),
        components,
        clock,
        data_dir,
        settings,
        shutdown: Some(tx),
        server: Some(server),
        _dir: None,
        _cleanups: Vec::new(),
    }
}

impl TestApp {
    /// A second node of the same system: its own server on its own port, sharing the
    /// database, `coord`, bus and clock of this one.
    pub async fn spawn_peer(&self) -> TestApp {
        start(self.settings.clone(), self.clock.clone()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// An answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The problem document's `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// Charges `amount` to `tok_visa` at the gateway directly under `key`, as a request
    /// that crashed after its charge did (or one that comes too late).
    pub async fn charge_gateway(&self, key: &str, amount: i64) -> matsuri_payments::ChargeOutcome {
        self.components
            .gateway
            .charge(&matsuri_payments::ChargeRequest {
                idempotency_key: key,
                amount: matsuri_core::Yen(amount),
                card_token: "tok_visa",
            })
            .await
            .unwrap()
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.request_with(method, path, token, body, &[]).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with('/')
            && !path.starts_with("/api")
            && !path.starts_with("/healthz")
            && !path.starts_with("/readyz")
            && !path.starts_with("/metrics")
        {
            format!("{}/api/v1{path}", self.base)
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.http.request(method, url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            content_type,
            headers,
            text,
        }
    }

    /// `POST /orders` with an `Idempotency-Key`.
    pub async fn order_with_key(&self, token: &str, body: Value, key: &str) -> Answer {
        self.request_with(
            Method::POST,
            "/orders",
            Some(token),
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Registers a customer and returns their token.
    pub async fn register(&self, email: &str) -> String {
        let res = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Test Customer"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        res.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn staff_token(&self) -> String {
        let res = self
            .post(
                "/auth/login",
                None,
                json!({"email": STAFF_EMAIL, "password": STAFF_PASSWORD}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a product (as staff) and returns its id.
    pub async fn create_product(&self, sku: &str, price: i64, stock: i64) -> String {
        let staff = self.staff_token().await;
        let res = self
            .post("/admin/products", Some(&staff), json!({"sku": sku, "name": format!("Product {sku}"), "price": price, "stock": stock}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        res.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn available(&self, product_id: &str) -> i64 {
        let res = self.get(&format!("/products/{product_id}"), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body["available"].as_i64().unwrap()
    }

    /// Registers `n` users at once, `{prefix}{i}@example.com`; returns their tokens in order.
    pub async fn register_crowd(&self, prefix: &str, n: usize) -> Vec<String> {
        futures::future::join_all(
            (0..n).map(|i| async move { self.register(&format!("{prefix}{i}@example.com")).await }),
        )
        .await
    }

    /// The one number `sql` selects: how many rows a `COUNT(*)` counts, or a `SUM` cast
    /// to `BIGINT`.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.components.db.reader())
            .await
            .expect("a number")
    }
}

/// A valid checkout body paying with `card` for `quantity` units of one product.
pub fn one_line(card: &str, product_id: &str, quantity: i64) -> Value {
    order_body(
        card,
        Some(json!([{"product_id": product_id, "quantity": quantity}])),
    )
}

/// A valid checkout body paying with `card`, for `items` or (when `None`) the cart.
pub fn order_body(card: &str, items: Option<Value>) -> Value {
    let mut body = json!({
        "shipping_address": {"name": "Hanako Yamada", "postal_code": "150-0001", "address": "Jingumae 1-2-3, Shibuya, Tokyo"},
        "payment": {"method": "card", "card_token": card},
    });
    if let Some(items) = items {
        body["items"] = items;
    }
    body
}
