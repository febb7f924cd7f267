//! The online stock: the allocation store in `coord` that every checkout takes from, the
//! sync that sets it from the ledger without handing anything out twice, and flash-sale
//! mode, in which the sync leaves the store alone and the store alone decides.
//!
//! The sync of an item reads, in this order: the orders with a live delta on the item,
//! which of them the ledger has recorded, and then the ledger's net stock. Its script
//! then sets the count to that net less the deltas the ledger did not know, and drops the
//! known ones. An order recorded between the two reads is subtracted twice (the count is
//! low until the next sync), never not at all.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_coord::{Allocation, SharedCoord, Taken};
use matsuri_core::SharedClock;
use matsuri_core::config::InventorySettings;
use matsuri_core::timefmt::rfc3339;
use matsuri_db::{Db, rows_per_statement, value_rows};

use crate::error::InventoryError;
use crate::ledger::{self, Figures};

/// Why a take handed nothing out.
#[derive(Debug)]
pub enum TakeRefusal {
    Short { product_id: String, left: i64 },
    Unknown(String),
    Failed(anyhow::Error),
}

/// One SKU's stock as the staff page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StockView {
    pub sku: String,
    pub product_id: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub net: i64,
    /// What the allocation store can still hand out.
    pub allocatable: i64,
    /// Units that orders not yet in the ledger hold.
    pub reserved: i64,
    /// Units granted to marketplaces: what they list and what they sold that is not
    /// pulled yet.
    pub channels: i64,
    pub synced_at: Option<String>,
}

/// Flash-sale mode and when it last changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlashSale {
    pub enabled: bool,
    pub since: Option<String>,
}

/// A SKU on which the allocation store and the ledger disagreed when flash-sale mode
/// ended, before the sync set the store again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub sku: String,
    /// What the ledger says can be handed out: net less the orders it does not know yet.
    pub ledger: i64,
    /// What the allocation store held.
    pub allocation: i64,
    pub reconciled_at: String,
}

pub struct Stock {
    db: Db,
    coord: SharedCoord,
    clock: SharedClock,
    settings: InventorySettings,
}

/// An item the sync sets: its product id, SKU, and the open orders the ledger knows.
struct Pending {
    product_id: String,
    sku: String,
    known: Vec<String>,
}

impl Stock {
    pub fn new(
        db: Db,
        coord: SharedCoord,
        clock: SharedClock,
        settings: InventorySettings,
    ) -> Self {
        Self {
            db,
            coord,
            clock,
            settings,
        }
    }

    pub fn settings(&self) -> &InventorySettings {
        &self.settings
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn coord(&self) -> &SharedCoord {
        &self.coord
    }

    pub(crate) fn delta_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.delta_ttl_seconds.max(1))
    }

    /// Takes every line's units for the order in the allocation store, all or none; an
    /// item the store holds no count of yet is synced first.
    pub async fn take(&self, order_id: &str, lines: &[(String, i64)]) -> Result<(), TakeRefusal> {
        for _ in 0..=lines.len() {
            match self
                .coord
                .alloc_take(order_id, lines, self.delta_ttl())
                .await
            {
                Ok(Taken::Taken | Taken::Already) => return Ok(()),
                Ok(Taken::Short { item, left }) => {
                    return Err(TakeRefusal::Short {
                        product_id: item,
                        left,
                    });
                }
                Ok(Taken::Unknown(item)) => match self.seed(&item).await {
                    Ok(true) => {}
                    Ok(false) => return Err(TakeRefusal::Unknown(item)),
                    Err(e) => return Err(TakeRefusal::Failed(e)),
                },
                Err(e) => return Err(TakeRefusal::Failed(e)),
            }
        }
        Err(TakeRefusal::Failed(anyhow::anyhow!(
            "the allocation store lost its counts while taking"
        )))
    }

    /// Gives back the units the order took; how many lines came back (none the second time).
    pub async fn give_back(&self, order_id: &str) -> anyhow::Result<usize> {
        let lines = self.coord.alloc_give_back(order_id).await?;
        if !lines.is_empty() {
            tracing::info!(order_id, lines = lines.len(), "stock given back");
        }
        Ok(lines.len())
    }

    /// What the store can hand out of each product (0 for one inventory does not know).
    pub async fn available(&self, product_ids: &[String]) -> anyhow::Result<Vec<i64>> {
        let mut counts = self.coord.alloc_counts(product_ids).await?;
        for (product_id, count) in product_ids.iter().zip(counts.iter_mut()) {
            if count.is_none() && self.seed(product_id).await? {
                *count = self
                    .coord
                    .alloc_counts(std::slice::from_ref(product_id))
                    .await?
                    .pop()
                    .flatten();
            }
        }
        Ok(counts.into_iter().map(|c| c.unwrap_or(0).max(0)).collect())
    }

    /// Gives the store a count for an item it holds none of; false for an unknown item.
    async fn seed(&self, product_id: &str) -> anyhow::Result<bool> {
        let sku: Option<String> =
            sqlx::query_scalar("SELECT sku FROM inventory_items WHERE product_id = $1")
                .bind(product_id)
                .fetch_optional(self.db.reader())
                .await?;
        let Some(sku) = sku else {
            return Ok(false);
        };
        self.sync_items(vec![(product_id.to_owned(), sku)], true)
            .await?;
        Ok(true)
    }

    /// Records `quantity` as the online store's count of the SKU today and syncs it.
    pub async fn set_book(
        &self,
        product_id: &str,
        sku: &str,
        quantity: i64,
    ) -> anyhow::Result<i64> {
        let now = self.clock.now_ms();
        let (day, day_start) = day_of(now);
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO inventory_items (product_id, sku, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (product_id) DO UPDATE SET sku = excluded.sku",
        )
        .bind(product_id)
        .bind(sku)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO inventory_book (store, sku, day, day_start, quantity, import_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6) ON CONFLICT (store, sku, day) \
             DO UPDATE SET quantity = excluded.quantity, import_id = NULL, updated_at = excluded.updated_at",
        )
        .bind(&self.settings.online_store)
        .bind(sku)
        .bind(&day)
        .bind(day_start)
        .bind(quantity)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let synced = self
            .sync_items(vec![(product_id.to_owned(), sku.to_owned())], false)
            .await?;
        Ok(synced.first().map_or(0, |a| a.allocatable.max(0)))
    }

    /// Sets each item's count from the ledger (only those without one, `only_absent`).
    pub(crate) async fn sync_items(
        &self,
        items: Vec<(String, String)>,
        only_absent: bool,
    ) -> anyhow::Result<Vec<Allocation>> {
        let mut pending = Vec::with_capacity(items.len());
        for (product_id, sku) in items {
            let open = self.coord.alloc_open(&product_id).await?;
            let known = ledger::known_orders(&self.db, &sku, &open).await?;
            pending.push(Pending {
                product_id,
                sku,
                known,
            });
        }
        let skus: Vec<String> = pending.iter().map(|p| p.sku.clone()).collect();
        // Grants before the figures: a marketplace order pulled in between moves units
        // from the grant to the ledger's unshipped, and is then subtracted twice, not never.
        let granted = ledger::granted(&self.db, &skus).await?;
        let figures = ledger::figures(&self.db, &self.settings.online_store, Some(&skus)).await?;
        let mut synced = Vec::with_capacity(pending.len());
        let mut rows = Vec::with_capacity(pending.len());
        for item in pending {
            let net = figures.get(&item.sku).map_or(0, Figures::net);
            let channels = granted.get(&item.sku).copied().unwrap_or(0);
            let Some(allocation) = self
                .coord
                .alloc_sync(&item.product_id, net - channels, &item.known, only_absent)
                .await?
            else {
                continue;
            };
            rows.push((item.sku, net, allocation.allocatable));
            synced.push(allocation);
        }
        self.record_synced(&rows).await?;
        Ok(synced)
    }

    /// Remembers what each SKU was synced with, many SKUs to a statement.
    async fn record_synced(&self, rows: &[(String, i64, i64)]) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        for chunk in rows.chunks(rows_per_statement(4)) {
            let sql = format!(
                "INSERT INTO inventory_synced (sku, net, allocatable, synced_at) VALUES {} \
                 ON CONFLICT (sku) DO UPDATE SET net = excluded.net, \
                 allocatable = excluded.allocatable, synced_at = excluded.synced_at",
                value_rows(self.db.dialect(), chunk.len(), 4)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (sku, net, allocatable) in chunk {
                query = query.bind(sku).bind(*net).bind(*allocatable).bind(now);
            }
            query.execute(self.db.writer()).await?;
        }
        Ok(())
    }

    pub(crate) async fn items(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT product_id, sku FROM inventory_items ORDER BY sku")
            .fetch_all(self.db.reader())
            .await
    }

    /// One sync of every item, unless flash-sale mode is on; how many were set.
    pub async fn sync(&self) -> anyhow::Result<usize> {
        if self.flash_sale().await?.enabled {
            return Ok(0);
        }
        self.sync_ignoring_flash_sale().await
    }

    /// One sync of every item, whatever the mode: as flash-sale mode begins, for the units
    /// the marketplaces gave back.
    pub(crate) async fn sync_ignoring_flash_sale(&self) -> anyhow::Result<usize> {
        let items = self.items().await?;
        Ok(self.sync_items(items, false).await?.len())
    }

    /// Runs the sync every `sync_interval_ms` until `stop`.
    pub async fn run_sync(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_millis(self.settings.sync_interval_ms.max(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let started = std::time::Instant::now();
            let span = tracing::debug_span!("job.inventory_sync");
            match self.sync().instrument(span).await {
                Ok(_) => metrics::histogram!("matsuri_job_seconds", "job" => "inventory_sync")
                    .record(started.elapsed().as_secs_f64()),
                Err(e) => tracing::warn!(error = %e, "inventory sync failed"),
            }
        }
    }

    /// The SKU's figures, net stock and what the allocation store holds.
    pub async fn stock(&self, sku: &str) -> Result<StockView, InventoryError> {
        let product_id: Option<String> =
            sqlx::query_scalar("SELECT product_id FROM inventory_items WHERE sku = $1")
                .bind(sku)
                .fetch_optional(self.db.reader())
                .await?;
        let product_id = product_id.ok_or_else(|| InventoryError::UnknownSku(sku.to_owned()))?;
        self.views(vec![(product_id, sku.to_owned())])
            .await?
            .pop()
            .ok_or_else(|| InventoryError::UnknownSku(sku.to_owned()))
    }

    /// Every SKU's stock, by SKU.
    pub async fn all_stock(&self) -> Result<Vec<StockView>, InventoryError> {
        let items = self.items().await?;
        self.views(items).await
    }

    /// The stock of each `(product id, SKU)`, in the order given: the ledger's figures,
    /// the grants and the synced times read once for all of them.
    async fn views(&self, items: Vec<(String, String)>) -> Result<Vec<StockView>, InventoryError> {
        let skus: Vec<String> = items.iter().map(|(_, sku)| sku.clone()).collect();
        let mut figures =
            ledger::figures(&self.db, &self.settings.online_store, Some(&skus)).await?;
        let granted = ledger::granted(&self.db, &skus).await?;
        let synced = ledger::synced_at(&self.db, &skus).await?;
        let mut views = Vec::with_capacity(items.len());
        for (product_id, sku) in items {
            let figures = figures.remove(&sku).unwrap_or_default();
            let allocation = self.coord.alloc_state(&product_id).await?;
            views.push(StockView {
                net: figures.net(),
                figures,
                allocatable: allocation.map_or(0, |a| a.allocatable.max(0)),
                reserved: allocation.map_or(0, |a| a.reserved),
                channels: granted.get(&sku).copied().unwrap_or(0),
                synced_at: synced.get(&sku).copied().map(rfc3339),
                sku,
                product_id,
            });
        }
        Ok(views)
    }

    pub async fn flash_sale(&self) -> Result<FlashSale, sqlx::Error> {
        let (enabled, since): (i64, i64) =
            sqlx::query_as("SELECT enabled, since FROM inventory_flash WHERE id = 1")
                .fetch_one(self.db.reader())
                .await?;
        Ok(FlashSale {
            enabled: enabled == 1,
            since: (since > 0).then(|| rfc3339(since)),
        })
    }

    /// Turns flash-sale mode on or off. Turning it off records where the allocation store
    /// and the ledger disagree, then syncs every item.
    pub async fn set_flash_sale(&self, enabled: bool) -> Result<FlashSale, InventoryError> {
        let now = self.clock.now_ms();
        let changed = sqlx::query(
            "UPDATE inventory_flash SET enabled = $1, since = $2 WHERE id = 1 AND enabled <> $1",
        )
        .bind(i64::from(enabled))
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if changed == 1 {
            tracing::info!(enabled, "flash-sale mode changed");
            if !enabled {
                self.reconcile(now).await?;
            }
        }
        Ok(self.flash_sale().await?)
    }

    /// Syncs every item and records each one whose count the sync changed: what the
    /// allocation store held against what the ledger says it should.
    async fn reconcile(&self, now: i64) -> Result<(), InventoryError> {
        let items = self.items().await?;
        let mut differences = Vec::new();
        for (product_id, sku) in items {
            let before = self.coord.alloc_state(&product_id).await?;
            let after = self
                .sync_items(vec![(product_id, sku.clone())], false)
                .await?;
            if let (Some(before), Some(after)) = (before, after.first())
                && before.allocatable != after.allocatable
            {
                differences.push((sku, after.allocatable, before.allocatable));
            }
        }
        let mut tx = self.db.begin().await?;
        sqlx::query("DELETE FROM inventory_reconciliation")
            .execute(&mut *tx)
            .await?;
        for (sku, ledger, allocation) in &differences {
            sqlx::query(
                "INSERT INTO inventory_reconciliation (sku, ledger, allocation, reconciled_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(sku)
            .bind(ledger)
            .bind(allocation)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(differences = differences.len(), "flash sale reconciled");
        Ok(())
    }

    pub async fn reconciliation(&self) -> Result<Vec<Difference>, sqlx::Error> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT sku, ledger, allocation, reconciled_at FROM inventory_reconciliation ORDER BY sku",
        )
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sku, ledger, allocation, at)| Difference {
                sku,
                ledger,
                allocation,
                reconciled_at: rfc3339(at),
            })
            .collect())
    }
}

/// The UTC day of a time as `YYYY-MM-DD`, and when it began.
pub(crate) fn day_of(ms: i64) -> (String, i64) {
    let start = ms - ms.rem_euclid(86_400_000);
    let day = matsuri_core::timefmt::yyyymmdd(start);
    let text = format!(
        "{}-{}-{}",
        day.get(0..4).unwrap_or_default(),
        day.get(4..6).unwrap_or_default(),
        day.get(6..8).unwrap_or_default()
    );
    (text, start)
}
