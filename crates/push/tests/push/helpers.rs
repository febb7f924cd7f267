//! A push service on a fresh database (SQLite in a temporary folder, or a PostgreSQL
//! database made for the test and dropped after it), with the bus that sends its pushes
//! and a manual clock.

use std::sync::Arc;

use matsuri_bus::Bus;
use matsuri_core::config::{DatabaseSettings, PushSettings};
use matsuri_core::ids::UserId;
use matsuri_core::{ManualClock, SharedClock};
use matsuri_db::Db;
use matsuri_module::Module;
use matsuri_push::{Actor, Notice, NotificationKind, PushModule, PushService, Urgency};
use matsuri_testkit::{Cleanup, scratch_database};

/// The database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `MATSURI_TEST_POSTGRES_URL` is set; in CI its absence is a failure.
    pub fn postgres() -> Option<Backend> {
        matsuri_testkit::service_url("MATSURI_TEST_POSTGRES_URL").map(Backend::Postgres)
    }
}

/// Runs each named `async fn(Backend)` on SQLite and on PostgreSQL.
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

/// A push service with its database, bus and clock.
pub struct TestPush {
    pub push: Arc<PushService>,
    pub db: Db,
    pub bus: Bus,
    pub clock: Arc<ManualClock>,
    pub settings: PushSettings,
    _data_dir: tempfile::TempDir,
    _database: Option<Cleanup>,
}

impl TestPush {
    /// The push service with the default settings but insecure endpoints allowed (the
    /// test push service is plain HTTP on 127.0.0.1).
    pub async fn start(backend: Backend) -> TestPush {
        Self::start_with(backend, |settings| settings.allow_insecure_endpoints = true).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut PushSettings)) -> TestPush {
        let data_dir = tempfile::tempdir().unwrap();
        let (database, url) = match &backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", data_dir.path().join("push.db").display()),
            ),
            Backend::Postgres(admin) => {
                let (url, dropped) = scratch_database(admin).await;
                (Some(dropped), url)
            }
        };
        let settings = DatabaseSettings {
            max_connections: 8,
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&url, &settings).await.unwrap();
        db.migrate(&[
            &matsuri_db::MIGRATIONS,
            &matsuri_bus::MIGRATIONS,
            &matsuri_push::MIGRATIONS,
        ])
        .await
        .unwrap();
        let mut settings = PushSettings {
            request_timeout_ms: 5_000,
            ..PushSettings::default()
        };
        tweak(&mut settings);
        let clock = Arc::new(ManualClock::starting_now());
        let shared: SharedClock = clock.clone();
        let push = PushService::new(db.clone(), shared.clone(), &settings, data_dir.path())
            .await
            .unwrap();
        let bus = Bus::new(db.clone(), shared, PushModule(push.clone()).subscriptions());
        TestPush {
            push,
            db,
            bus,
            clock,
            settings,
            _data_dir: data_dir,
            _database: database,
        }
    }

    /// Runs the bus until a pass finds nothing to do (at most 50 passes).
    pub async fn drain(&self) {
        for _ in 0..50 {
            if self.bus.run_once().await.unwrap() == 0 {
                return;
            }
        }
        panic!("the bus still had work after 50 passes");
    }

    /// The manual clock, in whole seconds.
    pub fn clock_seconds(&self) -> i64 {
        matsuri_core::Clock::now_ms(&*self.clock).div_euclid(1000)
    }

    /// Rows of a `SELECT COUNT(*)`.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.reader())
            .await
            .unwrap()
    }
}

/// A like of `post` by `actor` (a fresh user id each) for `user`.
pub fn like(user: &UserId, post: &str, actor: &str) -> Notice {
    Notice {
        user_id: user.clone(),
        kind: NotificationKind::PostLiked,
        subject_id: post.to_owned(),
        actor: Actor {
            id: format!("id-of-{actor}"),
            name: actor.to_owned(),
        },
        text: format!("{actor} liked your post"),
        url: Some(format!("/posts/{post}")),
        urgency: Urgency::Normal,
        web_push: true,
    }
}

/// A chat message in `chat` from `sender` to `user`.
pub fn message(user: &UserId, chat: &str, sender: &str, text: &str) -> Notice {
    Notice {
        user_id: user.clone(),
        kind: NotificationKind::ChatMessage,
        subject_id: chat.to_owned(),
        actor: Actor {
            id: format!("id-of-{sender}"),
            name: sender.to_owned(),
        },
        text: text.to_owned(),
        url: Some(format!("/chat/{chat}")),
        urgency: Urgency::High,
        web_push: true,
    }
}
