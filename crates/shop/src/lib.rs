//! The shop (seed 000 §1): catalog, cart, checkout and orders.
//!
//! Checkout never holds a lock across the payment gateway (architecture principle 5):
//! every line's units are taken from the stock allocator (all or none, keyed by the
//! order), then one transaction writes the order; the gateway is charged with the order's
//! idempotency key; a second transaction marks the order paid and clears the cart, or
//! marks it failed, and the allocator gets back exactly what the order took. The recovery
//! sweep settles orders a crash left in between.

mod allocator;
mod billing;
mod cancel;
mod cart;
mod catalog;
mod checkout;
mod error;
mod mails;
mod model;
mod numbers;
mod orders;
mod recovery;
mod refunds;
mod routes;

use std::sync::Arc;
use std::time::Duration;

pub use allocator::{Allocator, Refusal, SharedAllocator};
pub use billing::{BILLING_GROUP, Billing, Invoice, SentMail};
pub use error::ShopError;
pub use mails::{Contact, Customers, NOTIFICATION_GROUP, OrderMailer};
pub use model::*;
pub use refunds::{REFUND_GROUP, Refunds};
pub use routes::routes;

use matsuri_core::SharedClock;
use matsuri_core::config::ShopSettings;
use matsuri_db::{Db, IdempotencyStore, Migration, MigrationSet};
use matsuri_module::{Activity, ActivityKind};
use matsuri_payments::SharedGateway;

pub use catalog::NewProduct;
pub use checkout::{CheckedLines, CheckoutRequest};

/// What the shop's order mails need: where they go out, who the customers are, the
/// shop's own copy, and how long one mail may take.
pub struct MailPorts {
    pub mailer: matsuri_mail::SharedMailer,
    pub customers: Arc<dyn Customers>,
    pub shop_address: String,
    pub deadline: Duration,
}

/// The shop as the server composes it: its routes, the order mails and invoices that
/// `order.paid` fans out to, the refunds of `order.cancelled`, and the recovery sweep.
pub struct ShopModule {
    shop: Arc<ShopService>,
    mails: MailPorts,
}

impl ShopModule {
    pub fn new(shop: Arc<ShopService>, mails: MailPorts) -> Self {
        Self { shop, mails }
    }
}

impl matsuri_module::Module for ShopModule {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("shop", "Catalog, cart, checkout, orders"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.shop.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let (db, clock) = (&self.shop.db, &self.shop.clock);
        let mailer = OrderMailer::new(
            db.clone(),
            clock.clone(),
            self.mails.mailer.clone(),
            self.mails.customers.clone(),
            self.mails.shop_address.clone(),
            self.mails.deadline,
        );
        vec![
            matsuri_bus::Subscription::new(
                topics::ORDER_PAID,
                NOTIFICATION_GROUP,
                Arc::new(mailer),
            ),
            matsuri_bus::Subscription::new(
                topics::ORDER_PAID,
                BILLING_GROUP,
                Arc::new(Billing::new(db.clone(), clock.clone())),
            ),
            matsuri_bus::Subscription::new(
                topics::ORDER_CANCELLED,
                REFUND_GROUP,
                Arc::new(Refunds::new(
                    db.clone(),
                    clock.clone(),
                    self.shop.gateway.clone(),
                )),
            ),
        ]
    }

    fn spawn_jobs(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![tokio::spawn(self.shop.clone().run_recovery(stop.clone()))]
    }
}

/// Topics this crate publishes.
pub mod topics {
    pub const ORDER_PLACED: &str = "order.placed";
    pub const ORDER_PAID: &str = "order.paid";
    pub const ORDER_PAYMENT_FAILED: &str = "order.payment_failed";
    pub const ORDER_CANCELLED: &str = "order.cancelled";
}

/// The shop's business logic; no HTTP types.
pub struct ShopService {
    db: Db,
    clock: SharedClock,
    gateway: SharedGateway,
    idempotency: IdempotencyStore,
    settings: ShopSettings,
    numbers: numbers::OrderNumbers,
    allocator: SharedAllocator,
    activity: Arc<dyn Activity>,
}

impl ShopService {
    pub fn new(
        db: Db,
        clock: SharedClock,
        gateway: SharedGateway,
        allocator: SharedAllocator,
        activity: Arc<dyn Activity>,
        settings: ShopSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            idempotency: IdempotencyStore::new(db.clone(), clock.clone()),
            numbers: numbers::OrderNumbers::default(),
            allocator,
            activity,
            db,
            clock,
            gateway,
            settings,
        })
    }

    pub fn settings(&self) -> &ShopSettings {
        &self.settings
    }

    pub fn idempotency(&self) -> &IdempotencyStore {
        &self.idempotency
    }

    /// Tells the activity port that `user_id` looked at a product.
    pub fn record_view(&self, user_id: &str, product_id: &str) {
        self.activity
            .record(user_id, ActivityKind::View, Some(product_id), None);
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "shop",
    migrations: &[
        Migration {
            version: 1,
            name: "catalog, carts, orders",
            sql: include_str!("../migrations/0001_shop.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 2,
            name: "order number sequence",
            sql: include_str!("../migrations/0002_order_number_seq.sqlite.sql"),
            postgres_sql: Some(include_str!(
                "../migrations/0002_order_number_seq.postgres.sql"
            )),
        },
        Migration {
            version: 3,
            name: "invoices",
            sql: include_str!("../migrations/0003_billing.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 4,
            name: "cancelled and refunded orders",
            sql: include_str!("../migrations/0004_cancel.sql"),
            postgres_sql: None,
        },
    ],
};
