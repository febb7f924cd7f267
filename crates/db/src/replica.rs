//! A read replica (seed 001 §4: "use the replica DB to scale reads such as seat
//! availability"): a PostgreSQL streaming standby at `database.replica_url`, for reads
//! that may be a moment behind (seat maps, event lists, catalog pages), through
//! [`crate::Db::read_lagging`]. Everything else, and every read that must see the
//! caller's own write, stays on the primary.
//!
//! A watcher asks both sides where their log stands every `replica_check_ms`: the
//! primary's current position is kept for a while, and the replica is as far behind as
//! the oldest kept position it has not replayed yet. Past `replica_max_lag_ms`, or when
//! it cannot be asked, the replica is out of use and reads go to the primary; a query
//! that fails on it for want of a connection is asked again on the primary at once. So
//! a lost or lagging replica costs the primary more work, never a wrong answer beyond
//! that lag; and decisions (holds, payments) never read it.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

use matsuri_core::config::DatabaseSettings;

/// The replica's pool, and whether it is in use.
pub(crate) struct Replica {
    pub(crate) pool: AnyPool,
    usable: AtomicBool,
}

impl Replica {
    /// Connects lazily (a replica down at start only means reads go to the primary) and
    /// starts the watcher, which ends when the last handle drops.
    pub(crate) fn start(
        url: &str,
        primary: AnyPool,
        settings: &DatabaseSettings,
    ) -> anyhow::Result<Arc<Replica>> {
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(2))
            .acquire_timeout(Duration::from_millis(
                settings.replica_check_ms.max(100) * 4,
            ))
            .connect_lazy_with(options);
        let replica = Arc::new(Replica {
            pool,
            usable: AtomicBool::new(false),
        });
        let watched = Arc::downgrade(&replica);
        let every = Duration::from_millis(settings.replica_check_ms.max(10));
        let max_lag = Duration::from_millis(settings.replica_max_lag_ms);
        tokio::spawn(async move {
            let mut positions = Positions::default();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(replica) = watched.upgrade() else {
                    return;
                };
                let lag = replica.lag(&primary, &mut positions, every, max_lag).await;
                replica.judge(lag, max_lag);
            }
        });
        Ok(replica)
    }

    pub(crate) fn usable(&self) -> bool {
        self.usable.load(Ordering::Relaxed)
    }

    /// Out of use until the watcher finds it well again.
    pub(crate) fn lost(&self, error: &sqlx::Error) {
        if self.usable.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, "the read replica failed: reading from the primary");
        }
        metrics::counter!("matsuri_db_replica_fallbacks_total").increment(1);
        metrics::gauge!("matsuri_db_replica_up").set(0.0);
    }

    /// How far behind the replica is, or why it could not be told.
    async fn lag(
        &self,
        primary: &AnyPool,
        positions: &mut Positions,
        every: Duration,
        max_lag: Duration,
    ) -> Result<Duration, sqlx::Error> {
        let now: i64 = sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0')::bigint")
            .fetch_one(primary)
            .await?;
        positions.note(Instant::now(), now, max_lag + every * 4);
        let replayed: i64 = tokio::time::timeout(
            every * 4,
            sqlx::query_scalar(
                "SELECT CASE WHEN pg_is_in_recovery() \
                 THEN (pg_last_wal_replay_lsn() - '0/0')::bigint \
                 ELSE (pg_current_wal_lsn() - '0/0')::bigint END",
            )
            .fetch_one(&self.pool),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(positions.behind(replayed, Instant::now()))
    }

    fn judge(&self, lag: Result<Duration, sqlx::Error>, max_lag: Duration) {
        let usable = matches!(lag, Ok(lag) if lag <= max_lag);
        if let Ok(lag) = &lag {
            metrics::gauge!("matsuri_db_replica_lag_seconds").set(lag.as_secs_f64());
        }
        metrics::gauge!("matsuri_db_replica_up").set(if usable { 1.0 } else { 0.0 });
        let was = self.usable.swap(usable, Ordering::Relaxed);
        match (&lag, was, usable) {
            (_, false, true) => tracing::info!("the read replica is in use"),
            (Ok(lag), true, false) => tracing::warn!(
                lag_ms = lag.as_millis() as u64,
                "the read replica is behind: reading from the primary"
            ),
            (Err(e), true, false) => tracing::warn!(
                error = %e,
                "the read replica cannot be reached: reading from the primary"
            ),
            _ => {}
        }
    }
}

/// The primary's log positions of the last while, oldest first.
#[derive(Default)]
struct Positions(VecDeque<(Instant, i64)>);

impl Positions {
    fn note(&mut self, at: Instant, position: i64, keep: Duration) {
        if self.0.back().is_none_or(|&(_, last)| last != position) {
            self.0.push_back((at, position));
        }
        // The newest stays: an idle primary's one position is all there is.
        while self.0.len() > 1 && self.0.front().is_some_and(|&(t, _)| at - t > keep) {
            self.0.pop_front();
        }
    }

    /// How long ago the primary had written what the replica has not replayed: the
    /// oldest kept position past `replayed` (zero when it has replayed them all).
    fn behind(&self, replayed: i64, now: Instant) -> Duration {
        self.0
            .iter()
            .find(|&&(_, position)| position > replayed)
            .map_or(Duration::ZERO, |&(at, _)| now - at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_age_of_the_oldest_position_not_replayed() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let keep = Duration::from_secs(10);
        let mut positions = Positions::default();
        positions.note(at(0), 100, keep);
        positions.note(at(250), 100, keep);
        positions.note(at(500), 180, keep);
        positions.note(at(750), 260, keep);
        assert_eq!(positions.behind(260, at(800)), Duration::ZERO);
        assert_eq!(positions.behind(180, at(800)), Duration::from_millis(50));
        assert_eq!(positions.behind(100, at(800)), Duration::from_millis(300));
        assert_eq!(positions.behind(99, at(800)), Duration::from_millis(800));
    }

    #[test]
    fn old_positions_go_but_the_newest_stays() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let keep = Duration::from_millis(1_000);
        let mut positions = Positions::default();
        positions.note(at(0), 1, keep);
        positions.note(at(100), 2, keep);
        positions.note(at(5_000), 2, keep);
        assert_eq!(positions.0.len(), 1);
        assert_eq!(positions.behind(1, at(6_000)), Duration::from_millis(5_900));
    }
}
