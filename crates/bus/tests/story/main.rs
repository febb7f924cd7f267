//! The bus's conformance story, run on each of its backends: SQLite with the log read in
//! SQL always; PostgreSQL when `MATSURI_TEST_POSTGRES_URL` is set; SQLite with the log
//! relayed to JetStream when `MATSURI_TEST_NATS_URL` is set (in CI both must be). It
//! covers what every domain's consumers rely on: each event handed over once per group,
//! each key's events in order, with producers and two workers running at once and a
//! worker frozen past its turn; failures retried with backoff, parked behind their key,
//! ending dead after the group's attempts, retried or deleted by an operator; batches
//! handed over whole or, when one fails, one event at a time; pruning that keeps what a
//! dead letter still needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod order;

use std::sync::Arc;
use std::time::Duration;

use matsuri_bus::{Bus, NatsLink, Subscription, Transport};
use matsuri_core::config::DatabaseSettings;
use matsuri_core::{ManualClock, SharedClock};
use matsuri_db::Db;
use matsuri_testkit::{Cleanup, scratch_database, unique_name};

/// Where the log lives and how subscriptions read it.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server.
    Postgres(String),
    /// SQLite for the log, JetStream at this URL for delivery.
    Nats(String),
}

/// Runs each named `async fn(Backend)` once per backend.
#[macro_export]
macro_rules! bus_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(url) = matsuri_testkit::service_url("MATSURI_TEST_POSTGRES_URL") {
                        super::$name($crate::Backend::Postgres(url)).await;
                    }
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(url) = matsuri_testkit::service_url("MATSURI_TEST_NATS_URL") {
                        super::$name($crate::Backend::Nats(url)).await;
                    }
                }
            )*
        }
    };
}

/// A fresh log on one backend, and a clock that moves only when the test moves it.
pub struct Log {
    pub db: Db,
    pub clock: Arc<ManualClock>,
    pub transport: Transport,
    _cleanups: Vec<Cleanup>,
    _dir: tempfile::TempDir,
}

impl Log {
    pub async fn open(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bus.db").display());
        let mut cleanups = Vec::new();
        let url = match &backend {
            Backend::Sqlite | Backend::Nats(_) => sqlite,
            Backend::Postgres(admin) => {
                let (url, dropped) = scratch_database(admin).await;
                cleanups.push(dropped);
                url
            }
        };
        let db = Db::connect(&url, &DatabaseSettings::default())
            .await
            .unwrap();
        db.migrate(&[&matsuri_db::MIGRATIONS, &matsuri_bus::MIGRATIONS])
            .await
            .unwrap();
        let transport = match &backend {
            Backend::Nats(url) => {
                let prefix = unique_name();
                let link = NatsLink::connect(url, &prefix).await.unwrap();
                let (url, prefix) = (url.clone(), prefix.clone());
                cleanups.push(Cleanup::new(async move {
                    if let Ok(link) = NatsLink::connect(&url, &prefix).await {
                        let _ = link.delete_stream().await;
                    }
                }));
                Transport::Nats(Arc::new(link))
            }
            _ => Transport::Sql,
        };
        Self {
            db,
            clock: Arc::new(ManualClock::starting_now()),
            transport,
            _cleanups: cleanups,
            _dir: dir,
        }
    }

    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// A bus on this log with these subscriptions (another process, when there are two).
    pub fn bus(&self, subscriptions: Vec<Subscription>) -> Bus {
        Bus::new(self.db.clone(), self.clock(), subscriptions)
            .with_transport(self.transport.clone())
    }

    /// The one number `sql` counts.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.reader())
            .await
            .unwrap()
    }

    /// Runs passes of `bus`, moving the clock past any backoff, until nothing is left to
    /// do.
    pub async fn drain(&self, bus: &Bus) {
        for _ in 0..100 {
            let worked = bus.run_once().await.unwrap();
            let waiting = self
                .count("SELECT COUNT(*) FROM bus_parked WHERE status = 'pending'")
                .await;
            if worked == 0 && waiting == 0 {
                return;
            }
            self.clock.advance(Duration::from_secs(600));
        }
        panic!("the bus did not drain");
    }

    /// Publishes `events` to `topic` in one transaction, each payload under its key.
    pub async fn publish(&self, topic: &str, events: &[(String, serde_json::Value)]) {
        let now = matsuri_core::Clock::now_ms(&*self.clock);
        let mut tx = self.db.begin().await.unwrap();
        for (key, payload) in events {
            matsuri_bus::publish(&mut tx, now, topic, Some(key), payload)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
}
