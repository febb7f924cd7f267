//! Serving: a user's recommendations and a product's related items from the current run
//! (one indexed read, then names and prices through the catalog port), popular items when
//! the run did not know the user or had nothing for them; the activity the API records;
//! and the staff's view of runs.

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use matsuri_core::FieldError;
use matsuri_core::timefmt::rfc3339;
use matsuri_module::Activity as _;
use matsuri_module::ActivityKind;

use crate::error::RecsError;
use crate::model::{Metrics, Reason};
use crate::store::{self, Listed};
use crate::{DAY_MS, Recommender};

/// One recommended product, or one related to another (bought or viewed together).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub product_id: String,
    pub name: String,
    pub price: i64,
    pub score: f64,
    pub reason: Reason,
}

/// A user's recommendations and when the run that made them finished (`null` before any
/// run has).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub items: Vec<Recommendation>,
    pub generated_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RelatedItems {
    pub items: Vec<Recommendation>,
}

/// A batch run as staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// `api`, `cli` or `schedule`.
    pub source: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Where a running run is: `reading`, `evaluating`, `fitting`, `writing`, `done`.
    pub stage: String,
    /// Percent done.
    pub progress: i64,
    pub events: i64,
    pub users: i64,
    pub items: i64,
    pub metrics: Option<Metrics>,
    /// Milliseconds per stage.
    #[schema(value_type = Object)]
    pub timings: serde_json::Value,
    pub error: Option<String>,
}

impl Recommender {
    /// The user's top `limit`, or popular items marked `popular`.
    pub async fn for_user(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Recommendations, RecsError> {
        let (finished, listed) = self.list_or_popular(&store::user_owner(user_id)).await?;
        Ok(Recommendations {
            items: self.named(&listed, limit, None).await?,
            generated_at: finished.map(rfc3339),
        })
    }

    /// The product's related items; popular ones when the run found none.
    pub async fn related(&self, product_id: &str, limit: usize) -> Result<RelatedItems, RecsError> {
        let known = self.catalog.entries(&[product_id.to_owned()]).await?;
        if known.is_empty() {
            return Err(RecsError::ProductNotFound(product_id.to_owned()));
        }
        let (_, listed) = self
            .list_or_popular(&store::product_owner(product_id))
            .await?;
        Ok(RelatedItems {
            items: self.named(&listed, limit, Some(product_id)).await?,
        })
    }

    /// The current run's list of `owner`, or its popular items (counted on the log before
    /// any run has finished), and when the run finished.
    async fn list_or_popular(&self, owner: &str) -> Result<(Option<i64>, Vec<Listed>), RecsError> {
        let (finished, lists) = store::current_lists(&self.db, &[owner, store::POPULAR]).await?;
        let list_of = |wanted: &str| {
            lists
                .iter()
                .find(|(o, _)| o == wanted)
                .and_then(|(_, items)| serde_json::from_str::<Vec<Listed>>(items).ok())
                .unwrap_or_default()
        };
        let listed = list_of(owner);
        if !listed.is_empty() {
            return Ok((finished, listed));
        }
        let mut popular = if finished.is_some() {
            list_of(store::POPULAR)
        } else {
            self.popular_from_log().await?
        };
        for item in &mut popular {
            item.reason = Reason::Popular;
        }
        Ok((finished, popular))
    }

    /// The first `limit` entries the catalog still has, with their names and prices.
    async fn named(
        &self,
        listed: &[Listed],
        limit: usize,
        leave_out: Option<&str>,
    ) -> Result<Vec<Recommendation>, RecsError> {
        let ids: Vec<String> = listed
            .iter()
            .filter(|l| Some(l.product_id.as_str()) != leave_out)
            .take(limit + 10)
            .map(|l| l.product_id.clone())
            .collect();
        let entries = self.catalog.entries(&ids).await?;
        Ok(listed
            .iter()
            .filter(|l| Some(l.product_id.as_str()) != leave_out)
            .filter_map(|l| {
                entries.get(&l.product_id).map(|e| Recommendation {
                    product_id: l.product_id.clone(),
                    name: e.name.clone(),
                    price: e.price,
                    score: l.score,
                    reason: l.reason,
                })
            })
            .take(limit)
            .collect())
    }

    async fn popular_from_log(&self) -> Result<Vec<Listed>, RecsError> {
        let since = self.clock.now_ms() - i64::from(self.settings.popular_days.max(1)) * DAY_MS;
        let counted = store::popular_since(&self.db, since, store::MAX_LIST as i64).await?;
        Ok(counted
            .into_iter()
            .map(|(product, n)| Listed::new(&product, n as f32, Reason::Popular))
            .collect())
    }

    /// Checks an activity the API was sent and queues it.
    pub async fn record(
        &self,
        user_id: &str,
        kind: &str,
        product_id: Option<&str>,
        query: Option<&str>,
    ) -> Result<(), RecsError> {
        let Some(kind) = ActivityKind::parse(kind) else {
            return Err(RecsError::Invalid(vec![FieldError::new(
                "kind",
                "must be view, search, cart_add or purchase",
            )]));
        };
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        match kind {
            ActivityKind::Search => {
                let Some(query) = query else {
                    return Err(RecsError::Invalid(vec![FieldError::new(
                        "query",
                        "a search needs its query",
                    )]));
                };
                if query.chars().count() > 200 {
                    return Err(RecsError::Invalid(vec![FieldError::new(
                        "query",
                        "at most 200 characters",
                    )]));
                }
                self.log.record(user_id, kind, product_id, Some(query));
            }
            _ => {
                let Some(product_id) = product_id else {
                    return Err(RecsError::Invalid(vec![FieldError::new(
                        "product_id",
                        "this kind of activity needs its product",
                    )]));
                };
                let known = self.catalog.entries(&[product_id.to_owned()]).await?;
                if known.is_empty() {
                    return Err(RecsError::Invalid(vec![FieldError::new(
                        "product_id",
                        "no such product",
                    )]));
                }
                self.log.record(user_id, kind, Some(product_id), None);
            }
        }
        Ok(())
    }

    /// Starts a run in the background and answers its id; when one is going already,
    /// answers that one's.
    pub async fn start_run(self: &Arc<Self>, source: &str) -> Result<String, RecsError> {
        match self.begin(source).await {
            Ok(started) => {
                let run_id = started.run_id.clone();
                tokio::spawn(async move {
                    let _ = started.execute(None, CancellationToken::new()).await;
                });
                Ok(run_id)
            }
            Err(RecsError::Busy) => store::running(&self.db).await?.ok_or(RecsError::Busy),
            Err(e) => Err(e),
        }
    }

    /// The latest runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<Run>, RecsError> {
        Ok(store::runs(&self.db, limit)
            .await?
            .into_iter()
            .map(|r| Run {
                id: r.0,
                status: r.1,
                source: r.2,
                started_at: rfc3339(r.3),
                finished_at: r.4.map(rfc3339),
                stage: r.5,
                progress: r.6,
                events: r.7,
                users: r.8,
                items: r.9,
                timings: serde_json::from_str(&r.10).unwrap_or_default(),
                metrics: r.11.and_then(|m| serde_json::from_str(&m).ok()),
                error: r.12,
            })
            .collect())
    }
}
