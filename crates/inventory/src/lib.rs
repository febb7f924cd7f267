//! Inventory (seed 002, seed 004's inventory service): the stock ledger with its CSV
//! imports, the online store's net stock, the allocation store every checkout takes from
//! (with a delta per order, given back exactly once), the sync that sets the store from
//! the ledger without handing out stock twice, marketplace channels that sell units granted
//! out of that store, and flash-sale mode.

mod cancel;
mod channel_cycle;
mod channels;
mod error;
mod imports;
mod ledger;
pub mod marketplace;
mod routes;
mod sales;
pub mod simulated;
mod stock;

use std::sync::Arc;

pub use channels::{Channel, Channels, NewChannel};
pub use error::{InventoryError, RowError};
pub use imports::{Imported, Kind, Progress};
pub use ledger::Figures;
pub use routes::routes;
pub use sales::{GROUP, SaleRecorder};
pub use stock::{Difference, FlashSale, Stock, StockView, TakeRefusal};

use matsuri_db::{Migration, MigrationSet};

/// Inventory as the server composes it: its staff routes, the ledger's consumer of
/// `order.paid`, the sync and the marketplace channels' job.
pub struct InventoryModule {
    stock: Arc<Stock>,
    channels: Arc<Channels>,
}

impl InventoryModule {
    pub fn new(stock: Arc<Stock>, channels: Arc<Channels>) -> Self {
        Self { stock, channels }
    }
}

impl matsuri_module::Module for InventoryModule {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("inventory", "Stock ledger, imports, flash-sale mode"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.stock.clone(), self.channels.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let recorder = SaleRecorder::new(self.stock.db().clone(), self.stock.clock().clone());
        vec![matsuri_bus::Subscription::new(
            sales::ORDER_PAID,
            GROUP,
            Arc::new(recorder),
        )]
    }

    fn spawn_jobs(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.stock.clone().run_sync(stop.clone())),
            tokio::spawn(self.channels.clone().run(stop.clone())),
        ]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "inventory",
    migrations: &[
        Migration {
            version: 1,
            name: "stock ledger",
            sql: include_str!("../migrations/0001_ledger.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 2,
            name: "book stock, moves, imports, open orders, flash-sale mode",
            sql: include_str!("../migrations/0002_stock.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 3,
            name: "marketplace channels, their grants and adjustments",
            sql: include_str!("../migrations/0003_channels.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 4,
            name: "cancelled orders",
            sql: include_str!("../migrations/0004_cancelled.sql"),
            postgres_sql: None,
        },
    ],
};
