//! What every test suite of the workspace needs to run on more than SQLite: the URL of a
//! test service (PostgreSQL, Redis, NATS) from its `MATSURI_TEST_*` variable, a tag that
//! keeps one run's databases, keys and streams apart from another's, a PostgreSQL
//! database made for one test, and clean-up that runs when a test ends, passed or not.
//! Only tests depend on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use sqlx::Connection;

/// The URL of a test service from `var`; `None` (the run is skipped) outside CI, where
/// its absence is a failure.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var("CI").is_err(), "{var} must be set in CI");
            eprintln!("{var} is not set: skipping this backend");
            None
        }
    }
}

/// A name no other test of any run uses: the run's `MATSURI_TEST_RUN_ID` (its first 20
/// letters and digits, lower case) and 96 random bits, 45 characters at most, so that
/// a database named with a prefix stays within PostgreSQL's 63.
pub fn unique_name() -> String {
    let run: String = std::env::var("MATSURI_TEST_RUN_ID")
        .unwrap_or_else(|_| "test".into())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    let mut random = uuid::Uuid::new_v4().simple().to_string();
    random.truncate(24);
    format!("{}_{random}", run.to_ascii_lowercase())
}

/// Work that runs when the guard is dropped, at the end of a test whether it passed or
/// panicked: deleting what the test made on a shared server.
#[must_use = "the clean-up runs when the guard is dropped"]
pub struct Cleanup(Mutex<Option<Work>>);

/// Clean-up work; behind a mutex, so that what holds a guard may be shared between tasks.
type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Cleanup {
    pub fn new(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(Mutex::new(Some(Box::pin(work))))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let work = match self.0.get_mut() {
            Ok(work) => work.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(work) = work else {
            return;
        };
        // Drop may run inside the test's runtime, which must not block: a thread with a
        // runtime of its own does the work, and the test waits for it.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(work);
            }
        })
        .join();
    }
}

/// A PostgreSQL database made on the server of `admin_url` for one test: its URL, and
/// the guard that drops it.
///
/// # Panics
/// When the server cannot be reached or refuses to make the database: the test cannot
/// run.
pub async fn scratch_database(admin_url: &str) -> (String, Cleanup) {
    let name = format!("matsuri_test_{}", unique_name());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the PostgreSQL test server: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    let mut url = url::Url::parse(admin_url)
        .unwrap_or_else(|e| panic!("the PostgreSQL test URL is not a URL: {e}"));
    url.set_path(&name);
    let admin_url = admin_url.to_owned();
    let dropped = Cleanup::new(async move {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    });
    (url.to_string(), dropped)
}
