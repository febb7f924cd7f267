//! Inventory (seed 002, seed 004's inventory service): the stock ledger. For now it
//! records every sale from `order.paid`; net stock, imports, channels and flash-sale mode
//! build on this ledger.

use matsuri_bus::{Consumer, Event, apply_once};
use matsuri_core::SharedClock;
use matsuri_db::{Db, Migration, MigrationSet};
use matsuri_shop::OrderEvent;

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
}

#[async_trait::async_trait]
impl Consumer for SaleRecorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let paid: OrderEvent = event.decode()?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        if !apply_once(&mut tx, GROUP, &event.id, now).await? {
            return Ok(());
        }
        for line in &paid.order.items {
            sqlx::query(
                "INSERT INTO inventory_ledger (id, product_id, sku, quantity, reason, reference, event_id, created_at) \
                 VALUES ($1, $2, $3, $4, 'sale', $5, $6, $7) ON CONFLICT (reason, reference, product_id) DO NOTHING",
            )
            .bind(matsuri_core::ids::new_uuid_v7())
            .bind(&line.product_id)
            .bind(&line.sku)
            .bind(-line.quantity)
            .bind(&paid.order.number)
            .bind(&event.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::debug!(order_number = %paid.order.number, "sale recorded in the inventory ledger");
        Ok(())
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
