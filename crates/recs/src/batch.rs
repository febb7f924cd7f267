//! The batch: under a lease (one node at a time), read the last days of activity and the
//! purchase history a page at a time, weigh it by kind into a sparse user × item matrix,
//! evaluate the model on each user's last day held out, fit it on everything, and write
//! every user's list and every product's related items under the new run's id. Only when
//! all of it is written does one statement point readers at the run, so they never see
//! half of one; a run that fails or stops on the way leaves the previous one served.

use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::RecsError;
use crate::model::{self, Metrics, Params, Reason};
use crate::sparse::Csr;
use crate::store::{self, Listed};
use crate::{DAY_MS, Recommender};

/// Told where a run is: the stage's name, the work done and the work there is.
pub type Progress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// What a finished run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub events: u64,
    pub users: u64,
    pub items: u64,
    pub metrics: Metrics,
    pub timings: Timings,
}

/// Milliseconds each stage took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read_ms: u64,
    pub evaluate_ms: u64,
    pub fit_ms: u64,
    pub write_ms: u64,
    pub total_ms: u64,
}

/// A run holding the lease, its record written, not started yet.
pub struct Started {
    pub run_id: String,
    recommender: Arc<Recommender>,
}

/// Events read per page.
const PAGE: i64 = 20_000;

impl Recommender {
    /// Takes the lease and records a new run; [`RecsError::Busy`] when another run holds
    /// it. Runs a crash left `running` are marked failed and their rows removed.
    pub async fn begin(self: &Arc<Self>, source: &str) -> Result<Started, RecsError> {
        let run_id = matsuri_core::ids::new_uuid_v7();
        let now = self.clock.now_ms();
        if !store::take_lease(&self.db, &run_id, now, self.lease_ms()).await? {
            return Err(RecsError::Busy);
        }
        store::abandon_stale(&self.db, now).await?;
        store::insert_run(&self.db, &run_id, source, now).await?;
        tracing::info!(run_id = %run_id, source, "recommendation run started");
        Ok(Started {
            run_id,
            recommender: self.clone(),
        })
    }

    /// Runs a whole batch now, in this task; for the CLI and the schedule.
    pub async fn run_now(
        self: &Arc<Self>,
        source: &str,
        progress: Option<Progress>,
        stop: CancellationToken,
    ) -> Result<RunSummary, RecsError> {
        self.begin(source).await?.execute(progress, stop).await
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease_seconds.max(1))
            .unwrap_or(i64::MAX / 2_000)
            .saturating_mul(1_000)
    }

    pub(crate) fn params(&self) -> Params {
        let s = &self.settings;
        Params {
            neighbours: s.neighbours.max(1),
            user_neighbours: s.user_neighbours.max(1),
            top_n: s.top_n.max(1),
            shrinkage: s.shrinkage as f32,
            bm25_k1: s.bm25_k1 as f32,
            bm25_b: s.bm25_b.clamp(0.0, 1.0) as f32,
            user_share: s.user_share.clamp(0.0, 1.0) as f32,
            posting: 200,
        }
    }
}

impl Started {
    /// Runs the batch; the run record ends `succeeded` or `failed` (with the error), and
    /// the lease is given back either way.
    pub async fn execute(
        self,
        progress: Option<Progress>,
        stop: CancellationToken,
    ) -> Result<RunSummary, RecsError> {
        let recommender = &self.recommender;
        let span = tracing::info_span!("job.recommend", run_id = %self.run_id);
        let outcome = tracing::Instrument::instrument(self.steps(progress, &stop), span).await;
        let now = recommender.clock.now_ms();
        match &outcome {
            Ok(summary) => {
                tracing::info!(run_id = %self.run_id, events = summary.events, users = summary.users,
                    items = summary.items, total_ms = summary.timings.total_ms, "recommendation run succeeded");
            }
            Err(e) => {
                tracing::warn!(run_id = %self.run_id, error = %e, "recommendation run failed");
                if let Err(e) =
                    store::fail_run(&recommender.db, &self.run_id, &e.to_string(), now).await
                {
                    tracing::warn!(run_id = %self.run_id, error = %e, "run not marked failed");
                }
                if let Err(e) = store::drop_lists(&recommender.db, &self.run_id).await {
                    tracing::warn!(run_id = %self.run_id, error = %e, "a failed run's lists not removed");
                }
            }
        }
        if let Err(e) = store::release_lease(&recommender.db, &self.run_id).await {
            tracing::warn!(run_id = %self.run_id, error = %e, "lease not released; it lapses");
        }
        outcome
    }

    async fn steps(
        &self,
        progress: Option<Progress>,
        stop: &CancellationToken,
    ) -> Result<RunSummary, RecsError> {
        let r = &self.recommender;
        let tell = |stage: &str, done: u64, total: u64| {
            if let Some(progress) = &progress {
                progress(stage, done, total);
            }
        };
        let started = Instant::now();
        let now = r.clock.now_ms();
        let since = now - i64::from(r.settings.days.max(1)) * DAY_MS;
        let popular_since = now - i64::from(r.settings.popular_days.max(1)) * DAY_MS;
        self.stage("reading", 5).await?;
        let last_seen = store::last_seen(&r.db, since, now).await?;
        let total = store::count_window(&r.db, since, now).await?;
        let mut matrix = Accumulator::new(last_seen, popular_since, r.weights());
        let mut read = 0_u64;
        let mut after: Option<(i64, String)> = None;
        loop {
            check(stop)?;
            let page = store::page(&r.db, since, now, after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.0, last.1.clone()));
            read += page.len() as u64;
            for (at, _, user, kind, product) in &page {
                matrix.add(*at, user, kind, product.as_deref());
            }
            tell("reading", read, total);
            self.renew().await?;
        }
        let events = read;
        let mut after: Option<(i64, String)> = None;
        loop {
            check(stop)?;
            let page = store::purchases_before(&r.db, since, after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.0, last.1.clone()));
            for (_, _, user, product) in &page {
                matrix.bought_earlier(user, product);
            }
        }
        let read_ms = elapsed(started);
        let params = r.params();
        self.stage("evaluating", 30).await?;
        tell("evaluating", 0, 1);
        let built = matrix.build();
        let (built, metrics, evaluate_ms) = tokio::task::spawn_blocking(move || {
            let at = Instant::now();
            let metrics = model::evaluate(&built.train, &built.held_out, &params);
            (built, metrics, elapsed(at))
        })
        .await
        .map_err(|e| RecsError::Internal(e.into()))?;
        check(stop)?;
        self.stage("fitting", 55).await?;
        tell("fitting", 0, 1);
        let top_n = params.top_n;
        let (built, lists, related, fit_ms) = tokio::task::spawn_blocking(move || {
            let at = Instant::now();
            let fitted = model::fit(&built.full, &params);
            let lists = model::recommend_all(
                &fitted,
                &built.full,
                &built.bought,
                top_n,
                params.user_share,
            );
            let related: Vec<Vec<(u32, f32)>> = fitted
                .items
                .iter()
                .map(|near| near.iter().take(top_n).copied().collect())
                .collect();
            (built, lists, related, elapsed(at))
        })
        .await
        .map_err(|e| RecsError::Internal(e.into()))?;
        check(stop)?;
        self.stage("writing", 75).await?;
        let write_started = Instant::now();
        let mut rows: Vec<(String, Vec<Listed>)> = Vec::new();
        let popular: Vec<Listed> = built
            .popular
            .iter()
            .take(store::MAX_LIST)
            .map(|(j, s)| Listed::new(&built.items[*j as usize], *s, Reason::Popular))
            .collect();
        rows.push((store::POPULAR.to_owned(), popular));
        let owners = lists.len() + related.len() + 1;
        let mut written = 0_u64;
        let lists_of = lists.iter().enumerate().map(|(u, list)| {
            let listed = list
                .iter()
                .map(|(j, s, reason)| Listed::new(&built.items[*j as usize], *s, *reason))
                .collect();
            (store::user_owner(&built.users[u]), listed)
        });
        let related_of = related.iter().enumerate().map(|(i, near)| {
            let listed = near
                .iter()
                .map(|(j, s)| Listed::new(&built.items[*j as usize], *s, Reason::SimilarItems))
                .collect();
            (store::product_owner(&built.items[i]), listed)
        });
        for (owner, listed) in lists_of.chain(related_of) {
            rows.push((owner, listed));
            if rows.len() >= store::LISTS_PER_WRITE {
                check(stop)?;
                store::write_lists(&r.db, &self.run_id, &rows).await?;
                written += rows.len() as u64;
                rows.clear();
                tell("writing", written, owners as u64);
                self.renew().await?;
            }
        }
        check(stop)?;
        store::write_lists(&r.db, &self.run_id, &rows).await?;
        tell("writing", owners as u64, owners as u64);
        // Every list is written; stopping now still leaves the previous run served.
        check(stop)?;
        let write_ms = elapsed(write_started);
        let timings = Timings {
            read_ms,
            evaluate_ms,
            fit_ms,
            write_ms,
            total_ms: elapsed(started),
        };
        let summary = RunSummary {
            run_id: self.run_id.clone(),
            events,
            users: built.users.len() as u64,
            items: built.items.len() as u64,
            metrics,
            timings,
        };
        self.renew().await?;
        store::publish(&r.db, &summary, r.clock.now_ms()).await?;
        store::drop_other_lists(&r.db, &self.run_id).await?;
        Ok(summary)
    }

    async fn stage(&self, stage: &str, percent: i64) -> Result<(), RecsError> {
        store::set_stage(&self.recommender.db, &self.run_id, stage, percent).await?;
        Ok(())
    }

    /// Extends the lease; a run that lost it (it ran past the lease and another node took
    /// over) stops.
    async fn renew(&self) -> Result<(), RecsError> {
        let r = &self.recommender;
        if store::renew_lease(&r.db, &self.run_id, r.clock.now_ms(), r.lease_ms()).await? {
            Ok(())
        } else {
            Err(RecsError::LeaseLost)
        }
    }
}

fn check(stop: &CancellationToken) -> Result<(), RecsError> {
    if stop.is_cancelled() {
        Err(RecsError::Stopped)
    } else {
        Ok(())
    }
}

fn elapsed(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The weight of each kind of event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights {
    pub view: f32,
    pub cart_add: f32,
    pub purchase: f32,
}

/// One user's and item's activity: before the user's held-out day, within it, and whether
/// they bought it.
#[derive(Debug, Default, Clone, Copy)]
struct Cell {
    train: f32,
    held_out: f32,
    bought: bool,
}

/// The matrices the events add up to.
pub(crate) struct Built {
    pub users: Vec<String>,
    pub items: Vec<String>,
    pub full: Csr,
    pub train: Csr,
    pub bought: Csr,
    pub held_out: Vec<Vec<u32>>,
    pub popular: Vec<(u32, f32)>,
}

/// Adds events up, one at a time, into a cell per (user, item): memory grows with the
/// distinct pairs, not with the events.
pub(crate) struct Accumulator {
    last_seen: FxHashMap<String, i64>,
    popular_since: i64,
    weights: Weights,
    users: FxHashMap<String, u32>,
    items: FxHashMap<String, u32>,
    cells: FxHashMap<u64, Cell>,
    popular: FxHashMap<u32, f32>,
}

impl Accumulator {
    pub fn new(last_seen: FxHashMap<String, i64>, popular_since: i64, weights: Weights) -> Self {
        Self {
            last_seen,
            popular_since,
            weights,
            users: FxHashMap::default(),
            items: FxHashMap::default(),
            cells: FxHashMap::default(),
            popular: FxHashMap::default(),
        }
    }

    fn intern(map: &mut FxHashMap<String, u32>, key: &str) -> u32 {
        if let Some(at) = map.get(key) {
            return *at;
        }
        let at = u32::try_from(map.len()).unwrap_or(u32::MAX);
        map.insert(key.to_owned(), at);
        at
    }

    pub fn add(&mut self, at: i64, user: &str, kind: &str, product: Option<&str>) {
        let Some(product) = product else { return };
        let weight = match kind {
            "view" => self.weights.view,
            "cart_add" => self.weights.cart_add,
            "purchase" => self.weights.purchase,
            _ => return,
        };
        let held_out = self
            .last_seen
            .get(user)
            .is_some_and(|last| at > last - DAY_MS);
        let u = Self::intern(&mut self.users, user);
        let i = Self::intern(&mut self.items, product);
        let cell = self.cells.entry(pair(u, i)).or_default();
        if held_out {
            cell.held_out += weight;
        } else {
            cell.train += weight;
        }
        cell.bought |= kind == "purchase";
        if at >= self.popular_since {
            *self.popular.entry(i).or_default() += weight;
        }
    }

    /// A purchase from before the window: never recommended again, not weighed.
    pub fn bought_earlier(&mut self, user: &str, product: &str) {
        let (Some(u), Some(i)) = (self.users.get(user), self.items.get(product)) else {
            return;
        };
        self.cells.entry(pair(*u, *i)).or_default().bought = true;
    }

    pub fn build(self) -> Built {
        let (users, items) = (self.users.len(), self.items.len());
        let mut full = Vec::with_capacity(self.cells.len());
        let mut train = Vec::with_capacity(self.cells.len());
        let mut bought = Vec::new();
        let mut held_out = vec![Vec::new(); users];
        for (key, cell) in &self.cells {
            let (u, i) = ((key >> 32) as u32, (key & 0xffff_ffff) as u32);
            let total = cell.train + cell.held_out;
            if total > 0.0 {
                full.push((u, i, total));
            }
            if cell.train > 0.0 {
                train.push((u, i, cell.train));
            } else if cell.held_out > 0.0 {
                held_out[u as usize].push(i);
            }
            if cell.bought {
                bought.push((u, i, 1.0));
            }
        }
        for list in &mut held_out {
            list.sort_unstable();
        }
        let mut popular: Vec<(u32, f32)> = self.popular.into_iter().collect();
        let k = popular.len();
        crate::sparse::keep_top(&mut popular, k);
        Built {
            users: names_in_order(self.users),
            items: names_in_order(self.items),
            full: Csr::from_entries(users, items, full),
            train: Csr::from_entries(users, items, train),
            bought: Csr::from_entries(users, items, bought),
            held_out,
            popular,
        }
    }
}

fn pair(u: u32, i: u32) -> u64 {
    (u64::from(u) << 32) | u64::from(i)
}

fn names_in_order(map: FxHashMap<String, u32>) -> Vec<String> {
    let mut names = vec![String::new(); map.len()];
    for (name, at) in map {
        names[at as usize] = name;
    }
    names
}
