//! Recommendations (seed 000 §3): all day the activity log records what users do; at
//! night (or when staff ask) one node runs the batch under a lease — item-item and
//! user-user neighbours on the last days' weighted activity, every user's top N without
//! what they bought, every product's related items, an offline evaluation against the
//! popularity baseline — and swaps the result in at once; serving is one indexed read,
//! with popular items for a user the run did not know.

mod batch;
mod error;
pub mod generate;
mod log;
mod model;
mod routes;
mod schedule;
mod serve;
mod sparse;
mod store;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use batch::{Progress, RunSummary, Started, Timings};
pub use error::RecsError;
pub use log::{ActivityLog, Event, append};
pub use model::{Metrics, Reason};
pub use routes::routes;
pub use schedule::Schedule;
pub use serve::{Recommendation, Recommendations, RelatedItems, Run};

use matsuri_core::SharedClock;
use matsuri_core::config::RecsSettings;
use matsuri_db::{Db, Migration, MigrationSet};
use matsuri_module::Catalog;

pub(crate) const DAY_MS: i64 = 86_400_000;

/// The recommender's service: the batch, serving and the staff's view of runs.
pub struct Recommender {
    db: Db,
    clock: SharedClock,
    settings: RecsSettings,
    log: Arc<ActivityLog>,
    catalog: Arc<dyn Catalog>,
    schedule: Schedule,
}

impl Recommender {
    /// Fails on a schedule or time zone it cannot read.
    pub fn new(
        db: Db,
        clock: SharedClock,
        settings: RecsSettings,
        log: Arc<ActivityLog>,
        catalog: Arc<dyn Catalog>,
    ) -> anyhow::Result<Arc<Self>> {
        let schedule = Schedule::parse(&settings.schedule, &settings.timezone)?;
        Ok(Arc::new(Self {
            db,
            clock,
            settings,
            log,
            catalog,
            schedule,
        }))
    }

    pub fn settings(&self) -> &RecsSettings {
        &self.settings
    }

    pub fn log(&self) -> &Arc<ActivityLog> {
        &self.log
    }

    pub(crate) fn weights(&self) -> batch::Weights {
        batch::Weights {
            view: self.settings.view_weight as f32,
            cart_add: self.settings.cart_add_weight as f32,
            purchase: self.settings.purchase_weight as f32,
        }
    }

    /// The nightly run: waits for each time of the schedule and runs the batch; a node
    /// that finds the lease taken leaves the run to the node holding it.
    pub async fn run_schedule(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let now = self.clock.now_ms();
            let wait = self.schedule.next_after(now).saturating_sub(now).max(1_000);
            let wait = std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(60_000));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.run_now("schedule", None, stop.clone()).await {
                Ok(_) | Err(RecsError::Busy) => {}
                Err(e) => tracing::warn!(error = %e, "the scheduled recommendation run failed"),
            }
        }
    }

    /// Deletes activity older than `recs.retention_days`; answers how many events went.
    pub async fn prune_old_activity(&self) -> Result<u64, RecsError> {
        let keep = i64::from(self.settings.retention_days.max(1)) * DAY_MS;
        Ok(log::prune(&self.db, self.clock.now_ms() - keep).await?)
    }

    /// Deletes old activity every hour.
    pub async fn run_retention(self: Arc<Self>, stop: CancellationToken) {
        let every = std::time::Duration::from_secs(3_600);
        loop {
            match self.prune_old_activity().await {
                Ok(0) => {}
                Ok(gone) => tracing::info!(events = gone, "old activity deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting old activity failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Recommendations as the server composes them: the routes, the activity log's flusher
/// on every serving node, the schedule and the retention job on workers.
pub struct RecsModule(pub Arc<Recommender>);

impl matsuri_module::Module for RecsModule {
    fn name(&self) -> &'static str {
        "recs"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("recs", "Activity log, recommendations, batch runs"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.0.clone())
    }

    fn spawn_jobs(&self, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.0.clone().run_schedule(stop.clone())),
            tokio::spawn(self.0.clone().run_retention(stop.clone())),
        ]
    }

    fn spawn_serving(&self, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let log = self.0.log.clone();
        let stop = stop.clone();
        vec![tokio::spawn(async move { log.run_flusher(stop).await })]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "recs",
    migrations: &[
        Migration {
            version: 1,
            name: "activity log",
            sql: include_str!("../migrations/0001_activity.sqlite.sql"),
            postgres_sql: Some(include_str!("../migrations/0001_activity.postgres.sql")),
        },
        Migration {
            version: 2,
            name: "runs, lists, the current run, the lease",
            sql: include_str!("../migrations/0002_runs.sql"),
            postgres_sql: None,
        },
    ],
};
