//! The ledger's consumer of `order.paid`: each paid order's lines as sales, and as units
//! of an own order paid and not yet shipped, which net stock subtracts.

use matsuri_bus::{Consumer, Event, apply_all};
use matsuri_core::SharedClock;
use matsuri_db::{Db, rows_per_statement, value_rows};
use serde::Deserialize;

/// The topic of paid orders, as the shop publishes it.
pub(crate) const ORDER_PAID: &str = "order.paid";

/// What inventory reads of an `order.paid` payload; the shop's event carries more.
#[derive(Debug, Deserialize)]
struct PaidOrder {
    order_id: String,
    order: OrderSold,
}

#[derive(Debug, Deserialize)]
struct OrderSold {
    number: String,
    items: Vec<LineSold>,
}

#[derive(Debug, Deserialize)]
struct LineSold {
    product_id: String,
    sku: String,
    quantity: i64,
}

/// The consumer group name.
pub const GROUP: &str = "inventory";

/// Records each paid order's lines as sales in the ledger, and as units of an own order
/// not yet shipped.
pub struct SaleRecorder {
    db: Db,
    clock: SharedClock,
}

impl SaleRecorder {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// Records the lines of every paid order among `events` that was not recorded
    /// before, all in one transaction.
    async fn record(&self, events: &[&Event]) -> anyhow::Result<()> {
        let sales = events
            .iter()
            .map(|e| Ok((e.id.as_str(), e.decode::<PaidOrder>()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let ids: Vec<&str> = sales.iter().map(|(id, _)| *id).collect();
        let mut fresh = apply_all(&mut tx, GROUP, &ids, now).await?;
        let rows: Vec<(&str, &LineSold, &str, &str)> = sales
            .iter()
            .filter(|(id, _)| fresh.remove(*id))
            .flat_map(|(id, paid)| {
                let number = paid.order.number.as_str();
                let order_id = paid.order_id.as_str();
                paid.order
                    .items
                    .iter()
                    .map(move |line| (*id, line, number, order_id))
            })
            .collect();
        for chunk in rows.chunks(rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO inventory_ledger (id, product_id, sku, quantity, reason, reference, event_id, created_at) \
                 VALUES {} ON CONFLICT (reason, reference, product_id) DO NOTHING",
                value_rows(self.db.dialect(), chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (event_id, line, number, _) in chunk {
                query = query
                    .bind(matsuri_core::ids::new_uuid_v7())
                    .bind(&line.product_id)
                    .bind(&line.sku)
                    .bind(-line.quantity)
                    .bind("sale")
                    .bind(*number)
                    .bind(*event_id)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in rows.chunks(rows_per_statement(5)) {
            let sql = format!(
                "INSERT INTO inventory_orders (channel, reference, sku, quantity, paid_at) \
                 VALUES {} ON CONFLICT (channel, reference, sku) DO NOTHING",
                value_rows(self.db.dialect(), chunk.len(), 5)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (_, line, _, order_id) in chunk {
                query = query
                    .bind("own")
                    .bind(*order_id)
                    .bind(&line.sku)
                    .bind(line.quantity)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::debug!(lines = rows.len(), "sales recorded in the inventory ledger");
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for SaleRecorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.record(&[event]).await
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        Some(self.record(events).await)
    }
}
