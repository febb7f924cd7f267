//! The spam model: trained from the project's labelled corpus and the moderators' review
//! decisions (`matsuri batch train-spam`, and nightly on the workers), stored in the
//! database, and taken up by every node without a restart: each looks for a newer one
//! every `model_reload_seconds`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::SharedClock;
use matsuri_db::Db;
use matsuri_spam::{Evaluation, Model};

use crate::service::LiveService;

/// Labelled comments one training run reads at most (the newest).
const LABELLED_READ: i64 = 200_000;

/// The model this node scores with, and the stored id it came from (`None`: the shipped
/// model).
pub(crate) struct ModelSlot {
    current: RwLock<(Option<String>, Arc<Model>)>,
}

impl ModelSlot {
    /// The newest stored model, or the shipped one when none is stored (or it cannot
    /// be read).
    pub(crate) async fn load(db: &Db) -> anyhow::Result<Self> {
        let slot = ModelSlot {
            current: RwLock::new((None, Arc::new(matsuri_spam::default_model().clone()))),
        };
        slot.refresh(db).await?;
        Ok(slot)
    }

    pub(crate) fn current(&self) -> Arc<Model> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    fn id(&self) -> Option<String> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// Takes up the newest stored model if it is not the current one; true when it
    /// changed.
    pub(crate) async fn refresh(&self, db: &Db) -> anyhow::Result<bool> {
        let newest: Option<String> =
            sqlx::query_scalar("SELECT id FROM live_spam_models ORDER BY id DESC LIMIT 1")
                .fetch_optional(db.reader())
                .await?;
        let Some(newest) = newest else {
            return Ok(false);
        };
        if self.id().as_deref() == Some(newest.as_str()) {
            return Ok(false);
        }
        let encoded: String =
            sqlx::query_scalar("SELECT model FROM live_spam_models WHERE id = $1")
                .bind(&newest)
                .fetch_one(db.reader())
                .await?;
        let model = STANDARD
            .decode(encoded.as_bytes())
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}")));
        match model {
            Ok(model) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    (Some(newest.clone()), Arc::new(model));
                tracing::info!(model = newest, "took up a new spam model");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(
                    model = newest,
                    error = format!("{e:#}"),
                    "a stored spam model is unreadable; keeping the current one"
                );
                Ok(false)
            }
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub model_id: String,
    /// Examples from the shipped corpus.
    pub corpus: usize,
    /// Examples from the moderators' decisions.
    pub labelled: usize,
    pub ham: u64,
    pub spam: u64,
    /// The figures on the fifth of the corpus held out from a first run.
    pub held_out_precision: f64,
    pub held_out_recall: f64,
    pub held_out_accuracy: f64,
    pub held_out_ham_blocked: f64,
}

/// Trains a model from the corpus and every moderator's decision, and stores it; the
/// nodes take it up at their next look.
pub async fn train(db: &Db, clock: &SharedClock) -> anyhow::Result<TrainReport> {
    let labelled: Vec<(String, String)> = sqlx::query_as(
        "SELECT text, label FROM live_comments WHERE label IS NOT NULL ORDER BY id DESC LIMIT $1",
    )
    .bind(LABELLED_READ)
    .fetch_all(db.reader())
    .await?;
    let corpus = matsuri_spam::corpus();
    let decided = labelled
        .iter()
        .map(|(text, label)| (text.as_str(), label == "spam"));
    // Held out: every fifth example of the corpus, scored by a model trained on the rest.
    let trial = Model::train(
        corpus
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, example)| *example)
            .chain(decided.clone()),
    );
    let held_out: Evaluation = matsuri_spam::evaluate(
        &trial,
        corpus
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 == 0)
            .map(|(_, example)| *example),
        matsuri_spam::BLOCK,
    );
    let model = Model::train(corpus.iter().copied().chain(decided));
    let (ham, spam) = model.examples();
    let id = matsuri_core::ids::new_uuid_v7();
    sqlx::query(
        "INSERT INTO live_spam_models (id, created_at, ham, spam, model) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(clock.now_ms())
    .bind(i64::try_from(ham)?)
    .bind(i64::try_from(spam)?)
    .bind(STANDARD.encode(model.to_bytes()))
    .execute(db.writer())
    .await?;
    Ok(TrainReport {
        model_id: id,
        corpus: corpus.len(),
        labelled: labelled.len(),
        ham,
        spam,
        held_out_precision: held_out.precision,
        held_out_recall: held_out.recall,
        held_out_accuracy: held_out.accuracy,
        held_out_ham_blocked: held_out.ham_blocked,
    })
}

impl LiveService {
    /// Trains and stores a new model, and takes it up on this node at once.
    pub async fn train_now(&self) -> anyhow::Result<TrainReport> {
        let report = train(&self.db, &self.clock).await?;
        self.model.refresh(&self.db).await?;
        Ok(report)
    }
}

/// Looks for a newer model now and then, until `stop`.
pub(crate) async fn reloading(live: Arc<LiveService>, stop: CancellationToken) {
    let every = Duration::from_secs(live.settings.model_reload_seconds.max(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = live.model.refresh(&live.db).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "looking for a new spam model failed"
            );
        }
    }
}

/// Trains every `train_every_hours` on one worker of the deployment (the first to
/// claim the turn in `coord`), until `stop`.
pub(crate) async fn nightly(live: Arc<LiveService>, stop: CancellationToken) {
    let hours = live.settings.train_every_hours;
    if hours == 0 {
        return;
    }
    let every = Duration::from_secs(hours.saturating_mul(3_600));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        let turn = live.clock.now_ms() / i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let claim = live
            .coord
            .set_nx(
                &format!("live:training:{turn}"),
                live.realtime.node(),
                every,
            )
            .await;
        match claim {
            Ok(true) => {
                let started = std::time::Instant::now();
                let trained = live
                    .train_now()
                    .instrument(tracing::info_span!("job", name = "train-spam"))
                    .await;
                match trained {
                    Ok(report) => tracing::info!(
                        model = report.model_id,
                        labelled = report.labelled,
                        "trained a new spam model"
                    ),
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "training the spam model failed")
                    }
                }
                metrics::histogram!("matsuri_job_seconds", "job" => "train-spam")
                    .record(started.elapsed().as_secs_f64());
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "claiming the training turn failed"
            ),
        }
    }
}
