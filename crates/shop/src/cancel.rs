//! Cancelling a paid order that has not shipped. One transaction marks the order
//! cancelled, has the stock stop owing its units (refused when a line has shipped) and
//! publishes `order.cancelled`, from which the refund follows; once it commits, the
//! order's units go back to what checkout can take. Cancelling a cancelled order again
//! answers it as it is.

use matsuri_core::ids::UserId;

use crate::orders::load_order;
use crate::{Order, OrderEvent, OrderStatus, ShopError, ShopService, topics};

impl ShopService {
    /// Cancels the caller's paid order `number`; another user's order is `OrderNotFound`.
    pub async fn cancel_order(&self, user: &UserId, number: &str) -> Result<Order, ShopError> {
        if number.len() > 32 {
            return Err(ShopError::OrderNotFound);
        }
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        // The status moves once: a second cancel racing this one finds it cancelled.
        let claimed: Option<String> = sqlx::query_scalar(
            "UPDATE orders SET status = 'cancelled', cancelled_at = $3, updated_at = $3 \
             WHERE number = $1 AND user_id = $2 AND status = 'paid' RETURNING id",
        )
        .bind(number)
        .bind(user.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(order_id) = claimed else {
            tx.rollback().await?;
            let order = self.order_of(user, number).await?;
            return match order.status {
                OrderStatus::Cancelled => Ok(order),
                status => Err(ShopError::NotCancellable(status)),
            };
        };
        let order = load_order(&mut tx, &order_id).await?;
        let lines: Vec<(String, i64)> = order
            .items
            .iter()
            .map(|line| (line.sku.clone(), line.quantity))
            .collect();
        if !self.allocator.cancel(&mut tx, &order_id, &lines).await? {
            tx.rollback().await?;
            return Err(ShopError::OrderShipped);
        }
        matsuri_bus::publish(
            &mut tx,
            now,
            topics::ORDER_CANCELLED,
            Some(number),
            &OrderEvent {
                order_id: order_id.clone(),
                user_id: user.as_str().to_owned(),
                order: order.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(order_number = number, "order cancelled");
        let items = order
            .items
            .iter()
            .map(|line| (line.product_id.clone(), line.sku.clone()))
            .collect();
        if let Err(e) = self.allocator.restock(&order_id, items).await {
            tracing::warn!(order_number = number, error = %e, "a cancelled order's units wait for the next sync");
        }
        Ok(order)
    }
}
