//! Inventory (seed 002, seed 004's inventory service): the stock ledger. For now it
//! records every sale from `order.paid`; net stock, imports, channels and flash-sale mode
//! build on this ledger.

use matsuri_bus::{Consumer, Event, apply_all};
use matsuri_core::SharedClock;
use matsuri_db::{Db, Migration, MigrationSet, rows_per_statement, value_rows};
use serde::Deserialize;

/// Inventory as the server composes it: the ledger's consumer of `order.paid`.
pub struct InventoryModule {
    db: Db,
    clock: SharedClock,
}

impl InventoryModule {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }
}

impl matsuri_module::Module for InventoryModule {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let recorder = SaleRecorder::new(self.db.clone(), self.clock.clone());
        vec![matsuri_bus::Subscription::new(
            ORDER_PAID,
            GROUP,
            std::sync::Arc::new(recorder),
        )]
    }
}

/// The topic of paid orders, as the shop publishes it.
const ORDER_PAID: &str = "order.paid";

/// What inventory reads of an `order.paid` payload; the shop's event carries more.
#[derive(Debug, Deserialize)]
struct PaidOrder {
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

/// Records each paid order's lines as sales in the ledger.
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
        let rows: Vec<(&str, &LineSold, &str)> = sales
            .iter()
            .filter(|(id, _)| fresh.remove(*id))
            .flat_map(|(id, paid)| {
                let number = paid.order.number.as_str();
                paid.order.items.iter().map(move |line| (*id, line, number))
            })
            .collect();
        for chunk in rows.chunks(rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO inventory_ledger (id, product_id, sku, quantity, reason, reference, event_id, created_at) \
                 VALUES {} ON CONFLICT (reason, reference, product_id) DO NOTHING",
                value_rows(self.db.dialect(), chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (event_id, line, number) in chunk {
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

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "inventory",
    migrations: &[Migration {
        version: 1,
        name: "stock ledger",
        sql: include_str!("../migrations/0001_ledger.sql"),
        postgres_sql: None,
    }],
};
