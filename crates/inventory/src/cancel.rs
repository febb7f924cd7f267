//! Cancelling an own order that has not shipped, for the shop's cancel and inside its
//! transaction: the ledger stops counting the order's units as owed to the customer. Once
//! the cancel commits, the units go back to what checkout can take: at once while the
//! order's delta is still live, otherwise through a sync of its items.

use matsuri_db::{Conn, Dialect, rows_per_statement, value_rows};

use crate::stock::Stock;

impl Stock {
    /// Marks the own order `order_id` cancelled on `conn`, the caller's transaction. Its
    /// lines `(sku, quantity)` are recorded here when `order.paid` has not reached the
    /// ledger yet; that event then changes nothing. False when a line was shipped already:
    /// the caller must then roll back.
    pub async fn cancel_in(
        &self,
        conn: &mut Conn,
        order_id: &str,
        lines: &[(String, i64)],
    ) -> Result<bool, sqlx::Error> {
        let now = self.now();
        let dialect = Dialect::of(conn);
        for chunk in lines.chunks(rows_per_statement(6)) {
            let sql = format!(
                "INSERT INTO inventory_orders (channel, reference, sku, quantity, paid_at, cancelled_at) \
                 VALUES {} ON CONFLICT (channel, reference, sku) DO UPDATE \
                 SET cancelled_at = excluded.cancelled_at \
                 WHERE inventory_orders.shipped_at IS NULL AND inventory_orders.cancelled_at IS NULL",
                value_rows(dialect, chunk.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (sku, quantity) in chunk {
                query = query
                    .bind("own")
                    .bind(order_id)
                    .bind(sku)
                    .bind(*quantity)
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut *conn).await?;
        }
        // Read after the write, which holds the order's rows until the commit: a shipment
        // applied before it shows here, and one applied after it finds the order cancelled.
        let shipped: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM inventory_orders WHERE channel = 'own' AND reference = $1 \
             AND shipped_at IS NOT NULL",
        )
        .bind(order_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(shipped == 0)
    }

    /// After a cancel committed: gives back the order's delta if it is still live, then
    /// syncs its items `(product id, SKU)`, so their count holds the units the ledger no
    /// longer owes. In flash-sale mode the sync waits for the mode to end (its
    /// reconciliation).
    pub async fn restock(
        &self,
        order_id: &str,
        items: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        self.give_back(order_id).await?;
        if self.flash_sale().await?.enabled {
            return Ok(());
        }
        self.sync_items(items, false).await?;
        Ok(())
    }
}
