//! Concert ticketing (seeds 001 §4 and 003): events and their seats, the waiting room
//! with batch admission and access tokens, seat holds, payment by card or wallet, signed
//! QR tickets, and the sweeper that releases expired holds.
//!
//! Contended state changes only through statements whose condition is the invariant: a
//! seat is held by a conditional `UPDATE` (all of a hold's seats or none), a ticket's
//! seat is unique, and a wallet is debited with a version check. Holds, wallet charges
//! and wallet payments are each made by one task (four on PostgreSQL), a batch per
//! transaction. The waiting
//! room lives in the `coord` port (Redis sorted sets at scale); access tokens are also
//! written to the database, which answers token checks when `coord` is unreachable. A
//! waiting client near the front may have its status request held until it is admitted.
//! When every seat is sold the waiting room says so (`sellout.rs`); a hold may ask for
//! the best seats instead of naming them (`best.rs`); and every seat change goes to the
//! event's realtime topic (`seat_feed.rs`).

mod best;
mod error;
mod events;
mod export;
mod holds;
mod issued;
mod model;
mod payment;
mod qr;
mod queue;
mod routes;
mod seat_feed;
mod seat_locks;
mod sellout;
mod stamp;
mod sweeper;
mod waiting;
mod wallet;
mod wallet_payments;

use std::sync::Arc;

pub use error::TicketError;
pub use events::{NewEvent, SectionRequest};
pub use export::{DATA_EXPORT_GROUP, DataExport};
pub use holds::HoldPass;
pub use model::*;
pub use payment::PaymentMethod;
pub use routes::routes;
pub use sweeper::Swept;
pub use wallet::{ChargeKey, Charged};

use matsuri_coord::SharedCoord;
use matsuri_core::SharedClock;
use matsuri_core::config::TicketSettings;
use matsuri_db::{Db, IdempotencyStore, Migration, MigrationSet};
use matsuri_payments::SharedGateway;

/// Topics this crate publishes.
pub mod topics {
    pub const TICKET_PURCHASED: &str = "ticket.purchased";
}

/// The ticketing business logic; no HTTP types.
pub struct TicketService {
    db: Db,
    coord: SharedCoord,
    clock: SharedClock,
    gateway: SharedGateway,
    idempotency: IdempotencyStore,
    charges: tokio::sync::mpsc::Sender<wallet::PendingCharge>,
    holds: tokio::sync::mpsc::Sender<holds::PendingHold>,
    payments: tokio::sync::mpsc::Sender<wallet_payments::PendingPayment>,
    settings: TicketSettings,
    queue_keys: queue::QueueKeys,
    signer: Arc<qr::Signer>,
    admissions: queue::Admissions,
    waiters: waiting::Waiters,
    event_cache: events::EventCache,
    seat_maps: events::SeatMaps,
    sold_out: sellout::SoldOutCache,
    seat_feed: Arc<seat_feed::SeatFeed>,
}

impl TicketService {
    /// `secret` signs queue tokens; the QR signing key is loaded from the database (made
    /// on first start).
    pub async fn new(
        db: Db,
        coord: SharedCoord,
        clock: SharedClock,
        gateway: SharedGateway,
        settings: TicketSettings,
        secret: &[u8],
    ) -> anyhow::Result<Arc<Self>> {
        let signer = Arc::new(qr::Signer::load_or_create(&db, clock.now_ms()).await?);
        let seat_feed = Arc::new(seat_feed::SeatFeed::default());
        Ok(Arc::new(Self {
            idempotency: IdempotencyStore::new(db.clone(), clock.clone()),
            charges: wallet::start_charging(db.clone(), clock.clone()),
            holds: holds::start_holding(
                db.clone(),
                clock.clone(),
                seat_feed.clone(),
                settings.max_holds_per_admission,
            ),
            payments: wallet_payments::start_paying(
                db.clone(),
                clock.clone(),
                signer.clone(),
                seat_feed.clone(),
            ),
            queue_keys: queue::QueueKeys::new(secret),
            admissions: queue::Admissions::default(),
            waiters: waiting::Waiters::new(settings.max_held_queue_requests),
            event_cache: events::EventCache::default(),
            seat_maps: events::SeatMaps::default(),
            sold_out: sellout::SoldOutCache::default(),
            seat_feed,
            db,
            coord,
            clock,
            gateway,
            settings,
            signer,
        }))
    }

    pub fn settings(&self) -> &TicketSettings {
        &self.settings
    }

    pub fn idempotency(&self) -> &IdempotencyStore {
        &self.idempotency
    }
}

/// Ticketing as the server composes it: its routes, the `ticket.purchased` data export,
/// the admission scheduler, the sweeper and the seat map's frames; draining answers
/// held queue requests.
pub struct TicketsModule {
    tickets: Arc<TicketService>,
    realtime: Arc<matsuri_realtime::Realtime>,
    data_dir: std::path::PathBuf,
}

impl TicketsModule {
    /// `data_dir` holds the export (`exports/ticket-purchases.jsonl`); seat map changes
    /// go out through `realtime`.
    pub fn new(
        tickets: Arc<TicketService>,
        realtime: Arc<matsuri_realtime::Realtime>,
        data_dir: &std::path::Path,
    ) -> Self {
        Self {
            tickets,
            realtime,
            data_dir: data_dir.to_owned(),
        }
    }
}

impl matsuri_module::Module for TicketsModule {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some((
            "tickets",
            "Concert ticketing: waiting room, seat holds, wallet, payment, QR tickets",
        ))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.tickets.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let export = DataExport::new(
            self.tickets.db.clone(),
            self.tickets.clock.clone(),
            &self.data_dir,
        );
        vec![matsuri_bus::Subscription::new(
            topics::TICKET_PURCHASED,
            DATA_EXPORT_GROUP,
            Arc::new(export),
        )]
    }

    fn spawn_jobs(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.tickets.clone().run_admissions(stop.clone())),
            tokio::spawn(self.tickets.clone().run_sweeper(stop.clone())),
        ]
    }

    /// The seat map's frames: sockets of this node's subscribers wait for them.
    fn spawn_serving(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![tokio::spawn(self.tickets.seat_feed.clone().run(
            self.realtime.clone(),
            std::time::Duration::from_millis(self.tickets.settings.seat_frame_interval_ms),
            stop.clone(),
        ))]
    }

    fn draining(&self) {
        self.tickets.stop_waiting();
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "tickets",
    migrations: &[
        Migration {
            version: 1,
            name: "events, seats, reservations, tickets, wallets, access tokens",
            sql: include_str!("../migrations/0001_tickets.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 2,
            name: "seat versions, unsold seats",
            sql: include_str!("../migrations/0002_seat_versions.sql"),
            postgres_sql: None,
        },
    ],
};
