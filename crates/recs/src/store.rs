//! The recommender's SQL: the lease, run records, the activity log read in keyset pages,
//! the versioned lists and the pointer that makes a run current.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use matsuri_db::Db;

use crate::batch::RunSummary;
use crate::model::Reason;

/// The list of the popular items of a run.
pub const POPULAR: &str = "*";
/// Lists written per transaction.
pub const LISTS_PER_WRITE: usize = 2_000;
/// The longest list kept (the popular one; `?limit=` is at most this).
pub const MAX_LIST: usize = 100;

pub fn user_owner(user_id: &str) -> String {
    format!("u:{user_id}")
}

pub fn product_owner(product_id: &str) -> String {
    format!("p:{product_id}")
}

/// One entry of a stored list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    #[serde(rename = "p")]
    pub product_id: String,
    #[serde(rename = "s")]
    pub score: f64,
    #[serde(rename = "r")]
    pub reason: Reason,
}

impl Listed {
    pub fn new(product_id: &str, score: f32, reason: Reason) -> Self {
        Self {
            product_id: product_id.to_owned(),
            score: (f64::from(score) * 10_000.0).round() / 10_000.0,
            reason,
        }
    }
}

const LEASE: &str = "recommend";

/// Takes the batch's lease for `holder` until `now + ttl` if nobody holds it now.
pub async fn take_lease(db: &Db, holder: &str, now: i64, ttl: i64) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "INSERT INTO recs_lease (name, holder, until) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
         WHERE recs_lease.until < $4",
    )
    .bind(LEASE)
    .bind(holder)
    .bind(now.saturating_add(ttl))
    .bind(now)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(taken == 1)
}

pub async fn renew_lease(db: &Db, holder: &str, now: i64, ttl: i64) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query("UPDATE recs_lease SET until = $3 WHERE name = $1 AND holder = $2")
        .bind(LEASE)
        .bind(holder)
        .bind(now.saturating_add(ttl))
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(renewed == 1)
}

pub async fn release_lease(db: &Db, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recs_lease SET until = 0 WHERE name = $1 AND holder = $2")
        .bind(LEASE)
        .bind(holder)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Marks runs still `running` failed (the lease is ours, so their node is gone) and
/// removes the lists of every run that is not current.
pub async fn abandon_stale(db: &Db, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE recs_runs SET status = 'failed', finished_at = $1, \
         error = 'abandoned: its node stopped before it finished' WHERE status = 'running'",
    )
    .bind(now)
    .execute(db.writer())
    .await?;
    drop_other_lists(db, "").await
}

pub async fn insert_run(db: &Db, run_id: &str, source: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recs_runs (id, status, source, started_at, stage) \
         VALUES ($1, 'running', $2, $3, 'starting')",
    )
    .bind(run_id)
    .bind(source)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn set_stage(
    db: &Db,
    run_id: &str,
    stage: &str,
    percent: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recs_runs SET stage = $2, progress = $3 WHERE id = $1")
        .bind(run_id)
        .bind(stage)
        .bind(percent)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn fail_run(db: &Db, run_id: &str, error: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE recs_runs SET status = 'failed', finished_at = $2, error = $3 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(run_id)
    .bind(now)
    .bind(error)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Each user's last event in `[since, until)`.
pub async fn last_seen(
    db: &Db,
    since: i64,
    until: i64,
) -> Result<FxHashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT user_id, MAX(at) FROM recs_activity WHERE at >= $1 AND at < $2 GROUP BY user_id",
    )
    .bind(since)
    .bind(until)
    .fetch_all(db.reader())
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn count_window(db: &Db, since: i64, until: i64) -> Result<u64, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM recs_activity WHERE at >= $1 AND at < $2")
            .bind(since)
            .bind(until)
            .fetch_one(db.reader())
            .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// An event as the batch reads it: time, id, user, kind, product.
pub type Row = (i64, String, String, String, Option<String>);

/// The next `limit` events of `[since, until)` after `after` in (at, id) order.
pub async fn page(
    db: &Db,
    since: i64,
    until: i64,
    after: Option<&(i64, String)>,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    let (at, id) = after.cloned().unwrap_or((i64::MIN, String::new()));
    sqlx::query_as(
        "SELECT at, id, user_id, kind, product_id FROM recs_activity \
         WHERE at >= $1 AND at < $2 AND (at > $3 OR (at = $3 AND id > $4)) \
         ORDER BY at, id LIMIT $5",
    )
    .bind(since)
    .bind(until)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// The next `limit` purchases from before `before`, in (at, id) order.
pub async fn purchases_before(
    db: &Db,
    before: i64,
    after: Option<&(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, String, String)>, sqlx::Error> {
    let (at, id) = after.cloned().unwrap_or((i64::MIN, String::new()));
    sqlx::query_as(
        "SELECT at, id, user_id, product_id FROM recs_activity \
         WHERE at < $1 AND (at > $2 OR (at = $2 AND id > $3)) \
         AND kind = 'purchase' AND product_id IS NOT NULL ORDER BY at, id LIMIT $4",
    )
    .bind(before)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// Writes lists under `run_id` in one transaction.
pub async fn write_lists(
    db: &Db,
    run_id: &str,
    lists: &[(String, Vec<Listed>)],
) -> Result<(), sqlx::Error> {
    if lists.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for chunk in lists.chunks(matsuri_db::rows_per_statement(3).min(100)) {
        let sql = format!(
            "INSERT INTO recs_lists (run_id, owner, items) VALUES {}",
            matsuri_db::value_rows(db.dialect(), chunk.len(), 3)
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (owner, listed) in chunk {
            let items = serde_json::to_string(listed).unwrap_or_else(|_| "[]".into());
            insert = insert.bind(run_id).bind(owner.as_str()).bind(items);
        }
        insert.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Makes the run current and records it finished, in one transaction: the pointer's flip
/// is the one statement readers see change.
pub async fn publish(db: &Db, summary: &RunSummary, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE recs_runs SET status = 'succeeded', finished_at = $2, stage = 'done', progress = 100, \
         events = $3, users = $4, items = $5, timings = $6, metrics = $7 WHERE id = $1",
    )
    .bind(&summary.run_id)
    .bind(now)
    .bind(i64::try_from(summary.events).unwrap_or(i64::MAX))
    .bind(i64::try_from(summary.users).unwrap_or(i64::MAX))
    .bind(i64::try_from(summary.items).unwrap_or(i64::MAX))
    .bind(serde_json::to_string(&summary.timings).unwrap_or_default())
    .bind(serde_json::to_string(&summary.metrics).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO recs_current (slot, run_id) VALUES (1, $1) \
         ON CONFLICT (slot) DO UPDATE SET run_id = excluded.run_id",
    )
    .bind(&summary.run_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn drop_lists(db: &Db, run_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recs_lists WHERE run_id = $1 AND run_id NOT IN (SELECT run_id FROM recs_current)")
        .bind(run_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Removes the lists of every run but the current one and `keep`.
pub async fn drop_other_lists(db: &Db, keep: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM recs_lists WHERE run_id <> $1 AND run_id NOT IN (SELECT run_id FROM recs_current)",
    )
    .bind(keep)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The current run's lists of `owners` and when the run finished: one indexed read.
pub async fn current_lists(
    db: &Db,
    owners: &[&str; 2],
) -> Result<(Option<i64>, Vec<(String, String)>), sqlx::Error> {
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT l.owner, l.items, r.finished_at FROM recs_current c \
         JOIN recs_lists l ON l.run_id = c.run_id AND l.owner IN ($1, $2) \
         JOIN recs_runs r ON r.id = c.run_id WHERE c.slot = 1",
    )
    .bind(owners[0])
    .bind(owners[1])
    .fetch_all(db.reader())
    .await?;
    let finished = rows.first().and_then(|r| r.2);
    Ok((finished, rows.into_iter().map(|(o, i, _)| (o, i)).collect()))
}

/// The most active products since `since`, counted on the log itself: what is served
/// before any run has finished.
pub async fn popular_since(
    db: &Db,
    since: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, COUNT(*) AS n FROM recs_activity \
         WHERE at >= $1 AND product_id IS NOT NULL GROUP BY product_id ORDER BY n DESC, product_id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// A run as the staff API shows it, before its JSON columns are parsed.
pub type RunRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
);

pub async fn runs(db: &Db, limit: i64) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, source, started_at, finished_at, stage, progress, events, users, items, \
         timings, metrics, error FROM recs_runs ORDER BY started_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// The run that is going now, if one is.
pub async fn running(db: &Db) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM recs_runs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(db.reader())
    .await
}
