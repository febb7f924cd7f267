//! One cycle of a marketplace channel: pull its orders into the ledger, send its pending
//! adjustments again, report its shipped orders, and move each SKU's grant towards the
//! channel's share (nothing in flash-sale mode). See `channels.rs` for why no unit is
//! ever both the shop's and a channel's.

use std::collections::{BTreeMap, HashMap, HashSet};

use matsuri_coord::Taken;

use crate::channels::{ChannelRow, Channels};
use crate::ledger::{self, GRANT_PREFIX};
use crate::marketplace::{Adjusted, Adjustment, Connector, ConnectorError, OrdersPage};

/// Most pages of orders one cycle pulls.
const MAX_PAGES: usize = 50;
/// Most adjustments or shipments in one request.
const PER_REQUEST: usize = 500;

/// An adjustment not yet answered.
struct Pending {
    id: String,
    sku: String,
    delta: i64,
}

impl Channels {
    pub(crate) async fn cycle(&self, row: &ChannelRow) -> anyhow::Result<()> {
        let connector = self.connector(row)?;
        self.pull(row, &connector).await?;
        self.resend(row, &connector).await?;
        self.report_shipped(row, &connector).await?;
        let flash = self.stock().flash_sale().await?.enabled;
        self.rebalance(row, &connector, flash).await
    }

    /// Pulls the channel's orders and takes its whole listing back.
    pub(crate) async fn withdraw(&self, row: &ChannelRow) -> anyhow::Result<()> {
        let connector = self.connector(row)?;
        self.pull(row, &connector).await?;
        self.resend(row, &connector).await?;
        self.rebalance(row, &connector, true).await
    }

    async fn pull(&self, row: &ChannelRow, connector: &dyn Connector) -> anyhow::Result<()> {
        let mut cursor = row.cursor.clone();
        for _ in 0..MAX_PAGES {
            let page = connector.orders(cursor.as_deref()).await?;
            if page.orders.is_empty() {
                break;
            }
            self.record_orders(row, &page).await?;
            match page.next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => break,
            }
        }
        sqlx::query("UPDATE inventory_channels SET last_pull_at = $1 WHERE id = $2")
            .bind(self.stock().now())
            .bind(&row.id)
            .execute(self.stock().db().writer())
            .await?;
        Ok(())
    }

    /// Records a page of orders as unshipped ledger orders of the channel, each line's
    /// units leaving the channel's grant in the same transaction; an order seen before
    /// changes nothing.
    async fn record_orders(&self, row: &ChannelRow, page: &OrdersPage) -> anyhow::Result<()> {
        let mut tx = self.stock().db().begin().await?;
        let mut recorded = 0_u64;
        for order in &page.orders {
            if order.id.is_empty() || order.id.len() > 255 {
                return Err(
                    ConnectorError::BadAnswer("an order id of 1 to 255 bytes".into()).into(),
                );
            }
            let mut lines: BTreeMap<&str, i64> = BTreeMap::new();
            for line in &order.lines {
                if line.quantity <= 0 || line.sku.is_empty() || line.sku.len() > 255 {
                    return Err(ConnectorError::BadAnswer(format!(
                        "order {} has a line without a SKU or a positive quantity",
                        order.id
                    ))
                    .into());
                }
                *lines.entry(line.sku.as_str()).or_insert(0) += line.quantity;
            }
            for (sku, quantity) in lines {
                let inserted = sqlx::query(
                    "INSERT INTO inventory_orders (channel, reference, sku, quantity, paid_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel, reference, sku) DO NOTHING",
                )
                .bind(&row.name)
                .bind(&order.id)
                .bind(sku)
                .bind(quantity)
                .bind(order.placed_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    recorded += 1;
                    sqlx::query(
                        "UPDATE inventory_channel_stock SET granted = CASE WHEN granted < $1 \
                         THEN 0 ELSE granted - $1 END WHERE channel_id = $2 AND sku = $3",
                    )
                    .bind(quantity)
                    .bind(&row.id)
                    .bind(sku)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        sqlx::query("UPDATE inventory_channels SET cursor = $1 WHERE id = $2")
            .bind(page.next.as_deref().or(row.cursor.as_deref()))
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("matsuri_inventory_channel_order_lines_total").increment(recorded);
        Ok(())
    }

    async fn pending(&self, row: &ChannelRow) -> Result<Vec<Pending>, sqlx::Error> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, sku, delta FROM inventory_channel_pushes \
             WHERE channel_id = $1 AND state = 'pending' ORDER BY created_at, id",
        )
        .bind(&row.id)
        .fetch_all(self.stock().db().reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, sku, delta)| Pending { id, sku, delta })
            .collect())
    }

    /// Sends the adjustments that have no answer yet, with their first ids.
    async fn resend(&self, row: &ChannelRow, connector: &dyn Connector) -> anyhow::Result<()> {
        let pending = self.pending(row).await?;
        for chunk in pending.chunks(PER_REQUEST) {
            let adjustments: Vec<Adjustment> = chunk
                .iter()
                .map(|p| Adjustment {
                    id: p.id.clone(),
                    sku: p.sku.clone(),
                    delta: p.delta,
                })
                .collect();
            let answers = connector.adjust(&adjustments).await?;
            self.settle(row, &adjustments, &answers).await?;
        }
        Ok(())
    }

    /// Records what the marketplace applied: a grant keeps only the units it listed, and
    /// units it gave back leave the grant (the next sync hands them to the shop).
    async fn settle(
        &self,
        row: &ChannelRow,
        sent: &[Adjustment],
        answers: &[Adjusted],
    ) -> anyhow::Result<()> {
        let sent: HashMap<&str, &Adjustment> = sent.iter().map(|a| (a.id.as_str(), a)).collect();
        let now = self.stock().now();
        let mut tx = self.stock().db().begin().await?;
        for answer in answers {
            let Some(adjustment) = sent.get(answer.id.as_str()) else {
                continue;
            };
            let applied = if adjustment.delta >= 0 {
                answer.applied.clamp(0, adjustment.delta)
            } else {
                answer.applied.clamp(adjustment.delta, 0)
            };
            let done = sqlx::query(
                "UPDATE inventory_channel_pushes SET state = 'done', applied = $1 \
                 WHERE id = $2 AND channel_id = $3 AND state = 'pending'",
            )
            .bind(applied)
            .bind(&answer.id)
            .bind(&row.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                continue;
            }
            let change = applied - adjustment.delta.max(0);
            sqlx::query(
                "UPDATE inventory_channel_stock SET granted = CASE WHEN granted + $1 < 0 THEN 0 \
                 ELSE granted + $1 END, listed = $2 WHERE channel_id = $3 AND sku = $4",
            )
            .bind(change)
            .bind(answer.listed.max(0))
            .bind(&row.id)
            .bind(&adjustment.sku)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE inventory_channels SET last_push_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report_shipped(
        &self,
        row: &ChannelRow,
        connector: &dyn Connector,
    ) -> anyhow::Result<()> {
        let shipped: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT reference FROM inventory_orders WHERE channel = $1 \
             AND shipped_at IS NOT NULL AND reported_at IS NULL ORDER BY reference",
        )
        .bind(&row.name)
        .fetch_all(self.stock().db().reader())
        .await?;
        for chunk in shipped.chunks(PER_REQUEST) {
            connector.ship(chunk).await?;
            let sql = format!(
                "UPDATE inventory_orders SET reported_at = $1 WHERE channel = $2 AND reference IN ({})",
                matsuri_db::parameter_list(3, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(self.stock().now())
                .bind(&row.name);
            for reference in chunk {
                query = query.bind(reference);
            }
            query.execute(self.stock().db().writer()).await?;
        }
        Ok(())
    }

    /// Moves each SKU's grant towards the channel's share (0 when `withdraw`): units are
    /// taken from the allocation store before the marketplace is told to list them, and
    /// leave the grant only once it says it removed them.
    async fn rebalance(
        &self,
        row: &ChannelRow,
        connector: &dyn Connector,
        withdraw: bool,
    ) -> anyhow::Result<()> {
        let stock = self.stock();
        let items = stock.items().await?;
        let skus: Vec<String> = items.iter().map(|(_, sku)| sku.clone()).collect();
        let channels: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inventory_channels")
            .fetch_one(stock.db().reader())
            .await?;
        let everyone = ledger::granted(stock.db(), &skus).await?;
        let mine: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT sku, granted FROM inventory_channel_stock WHERE channel_id = $1",
        )
        .bind(&row.id)
        .fetch_all(stock.db().reader())
        .await?
        .into_iter()
        .collect();
        let waiting: HashSet<String> = self
            .pending(row)
            .await?
            .into_iter()
            .map(|p| p.sku)
            .collect();
        let buffer = i64::try_from(stock.settings().channel_buffer).unwrap_or(i64::MAX);
        // Every item's count in one round trip; a grant is taken atomically, so a count
        // that moved since only makes the grant smaller.
        let counts = if withdraw {
            vec![None; items.len()]
        } else {
            let product_ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
            stock.coord().alloc_counts(&product_ids).await?
        };
        let mut adjustments = Vec::new();
        for ((product_id, sku), count) in items.into_iter().zip(counts) {
            if waiting.contains(&sku) {
                continue;
            }
            let granted = mine.get(&sku).copied().unwrap_or(0);
            let target = if withdraw {
                0
            } else {
                let Some(allocatable) = count else {
                    continue;
                };
                let free = allocatable.max(0) + everyone.get(&sku).copied().unwrap_or(0);
                (free / (channels + 1) - buffer).max(0)
            };
            let wanted = target - granted;
            let id = matsuri_core::ids::new_uuid_v7();
            let delta = if wanted > 0 {
                self.grant(&product_id, &id, wanted).await?
            } else {
                wanted
            };
            if delta == 0 {
                continue;
            }
            self.record_push(row, &id, &sku, delta).await?;
            adjustments.push(Adjustment { id, sku, delta });
        }
        for chunk in adjustments.chunks(PER_REQUEST) {
            let answers = connector.adjust(chunk).await?;
            self.settle(row, chunk, &answers).await?;
        }
        Ok(())
    }

    /// Takes up to `wanted` units from the allocation store for a grant; how many.
    async fn grant(&self, product_id: &str, id: &str, wanted: i64) -> anyhow::Result<i64> {
        let coord = self.stock().coord();
        let entry = format!("{GRANT_PREFIX}{id}");
        let ttl = self.stock().delta_ttl();
        let mut asking = wanted;
        for _ in 0..2 {
            match coord
                .alloc_take(&entry, &[(product_id.to_owned(), asking)], ttl)
                .await?
            {
                Taken::Taken => return Ok(asking),
                Taken::Short { left, .. } if left > 0 && left < asking => asking = left,
                Taken::Short { .. } | Taken::Unknown(_) | Taken::Already => return Ok(0),
            }
        }
        Ok(0)
    }

    /// Writes the adjustment as pending; a grant's units count as the channel's from now,
    /// which is when the sync stops counting the allocation store's entry for them.
    async fn record_push(
        &self,
        row: &ChannelRow,
        id: &str,
        sku: &str,
        delta: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.stock().db().begin().await?;
        sqlx::query(
            "INSERT INTO inventory_channel_pushes (id, channel_id, sku, delta, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
        )
        .bind(id)
        .bind(&row.id)
        .bind(sku)
        .bind(delta)
        .bind(self.stock().now())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO inventory_channel_stock (channel_id, sku, granted, listed) \
             VALUES ($1, $2, $3, 0) ON CONFLICT (channel_id, sku) \
             DO UPDATE SET granted = inventory_channel_stock.granted + excluded.granted",
        )
        .bind(&row.id)
        .bind(sku)
        .bind(delta.max(0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
