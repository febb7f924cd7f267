//! The port through which the shop takes stock (seed 002): the shop owns it, inventory
//! implements it, the server wires the two. Every checkout takes its units here before it
//! writes the order, keyed by the order, and gives back exactly them when the payment
//! fails or the order is cancelled; a product's `available` is what this port can still
//! hand out.

use std::sync::Arc;

use matsuri_db::Conn;

/// Why units were not taken.
#[derive(Debug)]
pub enum Refusal {
    /// Fewer units of the product than wanted are left.
    Short {
        product_id: String,
        available: i64,
    },
    /// The product is not known to the stock.
    Unknown(String),
    Failed(anyhow::Error),
}

#[async_trait::async_trait]
pub trait Allocator: Send + Sync + 'static {
    /// Takes every line's units `(product id, quantity)` for the order, all or none. Taking
    /// again for an order that holds units takes nothing more.
    async fn take(&self, order_id: &str, lines: &[(String, i64)]) -> Result<(), Refusal>;
    /// Gives back the units the order took, once however often it is called.
    async fn give_back(&self, order_id: &str) -> anyhow::Result<()>;
    /// What each product's stock can still hand out, in the order asked.
    async fn available(&self, product_ids: &[String]) -> anyhow::Result<Vec<i64>>;
    /// Records `quantity` as the product's stock counted today in the store that feeds
    /// the shop; answers what can be handed out now.
    async fn set_book(&self, product_id: &str, sku: &str, quantity: i64) -> anyhow::Result<i64>;
    /// Cancels the paid order's stock on `conn`, the shop's transaction that cancels the
    /// order: its lines `(sku, quantity)` are no longer owed. False when a line has
    /// shipped already; the shop then rolls back.
    async fn cancel(
        &self,
        conn: &mut Conn,
        order_id: &str,
        lines: &[(String, i64)],
    ) -> anyhow::Result<bool>;
    /// After the cancel committed: the order's units go back to what can be handed out;
    /// `items` are its lines' `(product id, SKU)`.
    async fn restock(&self, order_id: &str, items: Vec<(String, String)>) -> anyhow::Result<()>;
}

pub type SharedAllocator = Arc<dyn Allocator>;

/// Units taken for an order that is not written yet. Dropped before the order commits,
/// they are given back (from a task, as drop cannot wait); a crash instead leaves them to
/// lapse with the order's delta.
pub(crate) struct Taken {
    allocator: SharedAllocator,
    order_id: String,
    armed: bool,
}

impl Taken {
    pub(crate) fn new(allocator: SharedAllocator, order_id: String) -> Self {
        Self {
            allocator,
            order_id,
            armed: true,
        }
    }

    pub(crate) fn order_id(&self) -> &str {
        &self.order_id
    }

    /// The order is committed: from now on its settlement gives the units back or not.
    pub(crate) fn reserved(mut self) {
        self.armed = false;
    }

    /// Gives the units back now, for a request that ends without writing its order.
    pub(crate) async fn give_back(mut self) {
        self.armed = false;
        give_back_unwritten(&*self.allocator, &self.order_id).await;
    }
}

/// Gives back the units of an order that was never written; a failure leaves them to
/// lapse with the order's delta.
async fn give_back_unwritten(allocator: &dyn Allocator, order_id: &str) {
    if let Err(e) = allocator.give_back(order_id).await {
        tracing::warn!(order_id, error = %e, "units of an unwritten order not given back; they lapse");
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (allocator, order_id) = (self.allocator.clone(), std::mem::take(&mut self.order_id));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { give_back_unwritten(&*allocator, &order_id).await });
        }
    }
}

impl std::fmt::Debug for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taken")
            .field("order_id", &self.order_id)
            .finish()
    }
}
