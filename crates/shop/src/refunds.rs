//! Refunds: each `order.cancelled` refunds the order's charge at the gateway, keyed by
//! the charge's idempotency key so that a redelivered event refunds nothing twice, and
//! records when. A gateway that fails leaves the event to the bus's retries.

use matsuri_bus::{Consumer, Event};
use matsuri_core::SharedClock;
use matsuri_db::Db;
use matsuri_payments::SharedGateway;

use crate::OrderEvent;

/// The consumer group name.
pub const REFUND_GROUP: &str = "refunds";

/// The `order.cancelled` consumer that refunds.
pub struct Refunds {
    db: Db,
    clock: SharedClock,
    gateway: SharedGateway,
}

impl Refunds {
    pub fn new(db: Db, clock: SharedClock, gateway: SharedGateway) -> Self {
        Self { db, clock, gateway }
    }
}

#[async_trait::async_trait]
impl Consumer for Refunds {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let cancelled: OrderEvent = event.decode()?;
        let charge_key: Option<String> = sqlx::query_scalar(
            "SELECT charge_key FROM orders WHERE id = $1 AND status = 'cancelled' \
             AND refunded_at IS NULL",
        )
        .bind(&cancelled.order_id)
        .fetch_optional(self.db.reader())
        .await?;
        let Some(charge_key) = charge_key else {
            return Ok(());
        };
        self.gateway.refund(&charge_key).await?;
        sqlx::query("UPDATE orders SET refunded_at = $2 WHERE id = $1 AND refunded_at IS NULL")
            .bind(&cancelled.order_id)
            .bind(self.clock.now_ms())
            .execute(self.db.writer())
            .await?;
        tracing::info!(order_number = %cancelled.order.number, "cancelled order refunded");
        Ok(())
    }
}
