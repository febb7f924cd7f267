//! Migrations: each domain crate owns an ordered set of SQL files and registers it here.
//! Applied sets are recorded per domain in `schema_migrations`; each migration runs in its
//! own transaction, and on PostgreSQL an advisory lock keeps two starting nodes from
//! migrating at once.

use anyhow::Context;
use sqlx::Executor;

use crate::{Db, Dialect};

/// One migration. `postgres_sql` replaces `sql` on PostgreSQL where the dialects differ.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    pub postgres_sql: Option<&'static str>,
}

/// A domain's migrations, in version order.
#[derive(Debug)]
pub struct MigrationSet {
    pub domain: &'static str,
    pub migrations: &'static [Migration],
}

const LOCK_KEY: i64 = 0x006d_6174_7375_7269; // "matsuri" in ASCII

impl Db {
    /// Applies every migration not applied yet, set by set, in the order given.
    pub async fn migrate(&self, sets: &[&MigrationSet]) -> anyhow::Result<()> {
        let mut conn = self.writer().acquire().await?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 domain TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, \
                 applied_at BIGINT NOT NULL, PRIMARY KEY (domain, version))",
        )
        .await?;
        if self.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        let result = self.apply_sets(&mut conn, sets).await;
        if self.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    async fn apply_sets(
        &self,
        conn: &mut sqlx::AnyConnection,
        sets: &[&MigrationSet],
    ) -> anyhow::Result<()> {
        for set in sets {
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE domain = $1")
                    .bind(set.domain)
                    .fetch_all(&mut *conn)
                    .await?;
            for migration in set.migrations {
                if applied.contains(&migration.version) {
                    continue;
                }
                let sql = match (self.dialect(), migration.postgres_sql) {
                    (Dialect::Postgres, Some(pg)) => pg,
                    _ => migration.sql,
                };
                let now = matsuri_core::Clock::now_ms(&matsuri_core::SystemClock);
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| {
                        format!(
                            "migration {} {:04} ({}) failed",
                            set.domain, migration.version, migration.name
                        )
                    })?;
                sqlx::query(
                    "INSERT INTO schema_migrations (domain, version, name, applied_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(set.domain)
                .bind(migration.version)
                .bind(migration.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(
                    domain = set.domain,
                    version = migration.version,
                    name = migration.name,
                    "migration applied"
                );
            }
        }
        Ok(())
    }
}
