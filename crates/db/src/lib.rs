//! The `db` port: one pool over SQLite or PostgreSQL, chosen by URL, with the same SQL for
//! both (the dialect they share: `$1` placeholders, `RETURNING`, `ON CONFLICT`, integer
//! money, text ids, integer millisecond timestamps).
//!
//! SQLite allows one writer at a time. Rather than letting many connections fight over the
//! write lock (and sleep in its busy handler), writes go through a pool of exactly one
//! connection and reads through several; on PostgreSQL both are the same pool, and reads
//! that may be a moment behind can go to a streaming replica (`replica.rs`).

pub mod batches;
mod idempotency;
mod migrate;
mod replica;
mod statements;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Executor};

pub use idempotency::{IdempotencyStore, KeyLink, KeyState, NewKey, fingerprint};
pub use migrate::{Migration, MigrationSet};
pub use sqlx::AnyConnection as Conn;
pub use statements::{Param, Statements};

/// A transaction on the writer.
pub type Tx = sqlx::Transaction<'static, Any>;

pub use matsuri_core::config::DatabaseSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    reader: AnyPool,
    writer: AnyPool,
    /// PostgreSQL only: a streaming replica for reads that may lag.
    replica: Option<Arc<replica::Replica>>,
    dialect: Dialect,
    /// SQLite's log checkpoints, stopped with the last handle.
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    /// SQLite: per sequence, the values taken from its counter row and not yet used,
    /// `next..=last`.
    prefetched: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    /// Held while a block of sequence values is taken.
    refilling: tokio::sync::Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.checkpointer {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dialect", &self.inner.dialect)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects to `sqlite://path` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str, settings: &DatabaseSettings) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let acquire = Duration::from_millis(settings.acquire_timeout_ms);
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default();
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let options = AnyConnectOptions::from_str(&format!("sqlite://{path}?mode=rwc"))?
                .disable_statement_logging();
            let busy = settings.busy_timeout_ms;
            let pool = |max: u32| {
                AnyPoolOptions::new()
                    .max_connections(max)
                    // A local file cannot drop a connection: no ping before every use.
                    .test_before_acquire(false)
                    .acquire_timeout(acquire)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = {busy}"
                            )))
                            .await?;
                            // A commit only appends to the log; `checkpoint_in_background`
                            // copies the log into the database, off the writer's path.
                            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            Ok(())
                        })
                    })
            };
            let writer = pool(1)
                .connect_with(options.clone())
                .await
                .with_context(|| format!("opening SQLite database {path}"))?;
            let reader = pool(settings.max_connections.max(1))
                .connect_with(options)
                .await
                .with_context(|| format!("opening SQLite database {path}"))?;
            let checkpointer = tokio::spawn(checkpoint_in_background(reader.clone()));
            Ok(Db {
                inner: Arc::new(Inner {
                    reader,
                    writer,
                    replica: None,
                    dialect: Dialect::Sqlite,
                    checkpointer: Some(checkpointer),
                    prefetched: Default::default(),
                    refilling: Default::default(),
                }),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = AnyPoolOptions::new()
                .max_connections(settings.max_connections.max(2))
                .acquire_timeout(acquire)
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            let replica = match &settings.replica_url {
                Some(url) => Some(
                    replica::Replica::start(url.expose(), pool.clone(), settings)
                        .context("the read replica's URL")?,
                ),
                None => None,
            };
            Ok(Db {
                inner: Arc::new(Inner {
                    reader: pool.clone(),
                    writer: pool,
                    replica,
                    dialect: Dialect::Postgres,
                    checkpointer: None,
                    prefetched: Default::default(),
                    refilling: Default::default(),
                }),
            })
        } else {
            anyhow::bail!(
                "unsupported database URL scheme (expected sqlite:// or postgres://): {}",
                url.split(':').next().unwrap_or_default()
            )
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.inner.reader
    }

    /// Runs a read that may be a moment behind (up to `database.replica_max_lag_ms`) on
    /// the replica when there is one in use, else on the primary; a read that fails on
    /// the replica for want of a connection runs again on the primary. `read` gets the
    /// pool to read from and may be called twice.
    pub async fn read_lagging<T, F, Fut>(&self, read: F) -> Result<T, sqlx::Error>
    where
        F: Fn(AnyPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        if let Some(replica) = self.inner.replica.as_ref().filter(|r| r.usable()) {
            match read(replica.pool.clone()).await {
                Err(e) if unreachable(&e) => replica.lost(&e),
                done => return done,
            }
        }
        read(self.inner.reader.clone()).await
    }

    /// Whether reads that may lag go to the replica now.
    pub fn replica_in_use(&self) -> bool {
        self.inner.replica.as_ref().is_some_and(|r| r.usable())
    }

    /// The pool for single-statement writes outside a transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.inner.writer
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so it can never fail half-way on an upgrade from a read lock.
    ///
    /// Never await another write from inside it: on SQLite the writer is one connection.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.inner.dialect {
            Dialect::Sqlite => self.inner.writer.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.inner.writer.begin().await,
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(self.reader())
            .await
            .map(|_| ())
    }

    /// The next value of a named sequence. On PostgreSQL it is a real `SEQUENCE` (no row
    /// lock, never rolled back); on SQLite, whose writes are serial anyway, a counter row,
    /// or a value kept in memory by [`Self::prefetch_sequence`]. Call it inside the
    /// transaction that uses the value. Values rise in the order they are drawn, within a
    /// process. A value a rolled-back transaction drew was never used: it leaves a gap,
    /// or, drawn from SQLite's counter row, may be drawn again.
    pub async fn next_in_sequence(&self, conn: &mut Conn, name: &str) -> Result<i64, sqlx::Error> {
        match self.inner.dialect {
            Dialect::Postgres => {
                sqlx::query_scalar("SELECT nextval(CAST($1 AS regclass))")
                    .bind(name)
                    .fetch_one(conn)
                    .await
            }
            Dialect::Sqlite => {
                if let Some(value) = self.take_prefetched(name) {
                    return Ok(value);
                }
                sqlx::query_scalar(
                    "INSERT INTO sequences (name, value) VALUES ($1, 1) \
                     ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 \
                     RETURNING value",
                )
                .bind(name)
                .fetch_one(conn)
                .await
            }
        }
    }

    /// On SQLite, makes sure the sequence has values in memory, taking a block of them
    /// from its counter row, in a statement of its own, when it has none left; the next
    /// draws inside transactions then cost the writer nothing. Call it before the
    /// transaction: a block taken inside one would be given back by its rollback while
    /// still in use. Values of a block this process does not use are skipped. Does
    /// nothing on PostgreSQL.
    pub async fn prefetch_sequence(&self, name: &str) -> Result<(), sqlx::Error> {
        if self.inner.dialect != Dialect::Sqlite || self.has_prefetched(name) {
            return Ok(());
        }
        let _turn = self.inner.refilling.lock().await;
        if self.has_prefetched(name) {
            return Ok(());
        }
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO sequences (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = sequences.value + $2 \
             RETURNING value",
        )
        .bind(name)
        .bind(SEQUENCE_BLOCK)
        .fetch_one(self.writer())
        .await?;
        if let Ok(mut blocks) = self.inner.prefetched.lock() {
            blocks.insert(name.to_owned(), (last - SEQUENCE_BLOCK + 1, last));
        }
        Ok(())
    }

    fn has_prefetched(&self, name: &str) -> bool {
        self.inner
            .prefetched
            .lock()
            .is_ok_and(|blocks| blocks.get(name).is_some_and(|(next, last)| next <= last))
    }

    fn take_prefetched(&self, name: &str) -> Option<i64> {
        let mut blocks = self.inner.prefetched.lock().ok()?;
        let (next, last) = blocks.get_mut(name)?;
        if *next > *last {
            return None;
        }
        *next += 1;
        Some(*next - 1)
    }

    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.reader.close().await;
    }
}

impl Dialect {
    /// The dialect of a connection.
    pub fn of(conn: &Conn) -> Dialect {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }
}

/// Sequence values [`Db::prefetch_sequence`] takes at a time.
const SEQUENCE_BLOCK: i64 = 256;

/// How often the SQLite log is copied into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Log pages past which a checkpoint waits for readers, so that the log cannot grow
/// without end under a constant stream of reads (about 200 MB of 4 KiB pages).
const LOG_PAGES_BOUND: i64 = 50_000;

/// Copies SQLite's write-ahead log into the database every `CHECKPOINT_EVERY`, on a
/// reader connection, so that the writer never stops for it. A passive checkpoint waits
/// for nobody: what a reader still needs stays in the log until the next one.
async fn checkpoint_in_background(reader: AnyPool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mode = "PASSIVE";
    while !reader.is_closed() {
        every.tick().await;
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        match sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&reader)
            .await
        {
            Ok((_, log_pages, _)) => {
                mode = if log_pages > LOG_PAGES_BOUND {
                    "RESTART"
                } else {
                    "PASSIVE"
                };
            }
            Err(_) if reader.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "checkpointing the SQLite log failed"),
        }
    }
}

/// Placeholders for a multi-row `VALUES` list, as the only parameters of a statement:
/// `rows` tuples of `columns` each. Bind the values row by row. PostgreSQL gets numbered
/// ones, `($1, $2), ($3, $4)`; SQLite anonymous ones, `(?, ?), (?, ?)`, because it looks a
/// numbered parameter up by walking the list of them, which costs a statement of
/// thousands of them millions of steps.
pub fn value_rows(dialect: Dialect, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let fields: Vec<String> = (1..=columns)
                .map(|column| match dialect {
                    Dialect::Sqlite => "?".to_owned(),
                    Dialect::Postgres => format!("${}", row * columns + column),
                })
                .collect();
            format!("({})", fields.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `count` numbered parameters from `$first` on, for an `IN (…)` list: `$2, $3, $4`. An
/// empty list is `NULL`, which matches nothing: PostgreSQL refuses `IN ()`. `NOT IN (NULL)`
/// matches nothing either, so an empty `NOT IN` is the caller's to leave out.
pub fn parameter_list(first: usize, count: usize) -> String {
    if count == 0 {
        return "NULL".to_owned();
    }
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per multi-row statement with `columns` parameters each: about a thousand
/// parameters, well inside either database's limit.
pub fn rows_per_statement(columns: usize) -> usize {
    (1_000 / columns.max(1)).max(1)
}

/// Bytes of parameter values one statement should carry at most. sqlx leaves Nagle's
/// algorithm on (it does not set `TCP_NODELAY`), and over TLS a message longer than one
/// record (16 KiB) is written in pieces: the last piece then waits for the server to
/// acknowledge the first, which Linux delays by 40 ms. A statement within this goes out in
/// one piece.
pub const STATEMENT_BYTES: usize = 12 * 1024;

/// Rows per multi-row statement of `columns` parameters whose values come to about
/// `row_bytes` a row: at most [`rows_per_statement`], and few enough to stay within
/// [`STATEMENT_BYTES`] (each value travels with its 4-byte length).
pub fn rows_per_message(columns: usize, row_bytes: usize) -> usize {
    let bytes = row_bytes + 4 * columns;
    (STATEMENT_BYTES / bytes.max(1)).clamp(1, rows_per_statement(columns))
}

/// Whether a read failed for want of a connection (or because the server is going away
/// or refusing reads now), rather than on its SQL: another server may answer it.
fn unreachable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Admin shutdown, crash shutdown, cannot connect now, and a standby's query
        // cancelled by a conflict with recovery.
        sqlx::Error::Database(e) => {
            matches!(
                e.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "40001")
            )
        }
        _ => false,
    }
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// The tables this crate owns: migration bookkeeping, sequences on SQLite, idempotency keys.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "db",
    migrations: &[Migration {
        version: 1,
        name: "idempotency and sequences",
        sql: include_str!("../migrations/0001_idempotency.sql"),
        postgres_sql: None,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh SQLite database in a folder of its own, removed with the folder.
    async fn scratch(name: &str) -> (tempfile::TempDir, std::path::PathBuf, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let url = format!("sqlite://{}", path.display());
        let db = Db::connect(&url, &DatabaseSettings::default())
            .await
            .unwrap();
        (dir, path, db)
    }

    #[tokio::test]
    async fn the_sqlite_log_reaches_the_database_file_in_the_background() {
        let (_dir, path, db) = scratch("log.db").await;
        sqlx::query("CREATE TABLE filler (body TEXT NOT NULL)")
            .execute(db.writer())
            .await
            .unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for _ in 0..50 {
            sqlx::query("INSERT INTO filler (body) VALUES ($1)")
                .bind("x".repeat(4_000))
                .execute(db.writer())
                .await
                .unwrap();
        }
        // Commits only append to the log, and nothing here asks for a checkpoint: the
        // rows reach the database file through the background one.
        let mut copied = false;
        for _ in 0..40 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if size() >= before + 50 * 4_000 {
                copied = true;
                break;
            }
        }
        assert!(copied, "database file still {} bytes", size());
        db.close().await;
    }

    #[test]
    fn value_rows_number_every_parameter_once() {
        assert_eq!(
            value_rows(Dialect::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(value_rows(Dialect::Postgres, 1, 1), "($1)");
        assert_eq!(value_rows(Dialect::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(rows_per_statement(8), 125);
        assert_eq!(rows_per_statement(5_000), 1);
        assert_eq!(rows_per_message(3, 80), 133);
        assert_eq!(rows_per_message(1, 4), 1_000);
        assert_eq!(rows_per_message(2, 100_000), 1);
        assert_eq!(parameter_list(2, 3), "$2, $3, $4");
        assert_eq!(parameter_list(1, 0), "NULL");
    }
}
