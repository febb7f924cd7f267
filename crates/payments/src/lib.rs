//! The `payments` port: card charges with an idempotency key, and the built-in simulated
//! gateway that answers by test token (`api.md`, "Shop"):
//!
//! | token | answer |
//! |---|---|
//! | `tok_visa` | approved |
//! | `tok_declined` | declined |
//! | `tok_gateway_error` | gateway error (nothing charged) |
//! | `tok_slow` | approved after the configured slow latency |
//!
//! Any other token is declined, as a real gateway declines a card it does not know.

use std::sync::Arc;
use std::time::Duration;

use matsuri_core::{SharedClock, Yen};
use matsuri_db::{Db, Migration, MigrationSet};

/// A charge to make. The same `idempotency_key` never charges twice.
#[derive(Debug, Clone)]
pub struct ChargeRequest<'a> {
    pub idempotency_key: &'a str,
    pub amount: Yen,
    pub card_token: &'a str,
}

/// What the gateway decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved { charge_id: String },
    Declined { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway failed; the charge was not made.
    #[error("the payment gateway failed: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError>;

    /// Settles a charge whose answer was lost (a crash between the charge and recording
    /// it): answers `Approved` if it went through, and otherwise voids the key so that a
    /// late charge with it can never succeed, and answers `Declined`.
    async fn settle(&self, idempotency_key: &str) -> Result<ChargeOutcome, GatewayError>;

    /// Gives back an approved charge.
    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError>;
}

pub type SharedGateway = Arc<dyn PaymentGateway>;

pub use matsuri_core::config::PaymentSettings;

/// The built-in gateway. It keeps its ledger in its own table, so it remembers charges
/// across restarts like a real one.
pub struct SimulatedGateway {
    db: Db,
    clock: SharedClock,
    latency: Duration,
    slow_latency: Duration,
}

impl SimulatedGateway {
    pub fn new(db: Db, clock: SharedClock, settings: &PaymentSettings) -> Self {
        Self {
            db,
            clock,
            latency: Duration::from_millis(settings.latency_ms),
            slow_latency: Duration::from_millis(settings.slow_latency_ms),
        }
    }

    async fn record(
        &self,
        key: &str,
        token: &str,
        amount: Yen,
        status: &str,
    ) -> Result<(String, String), GatewayError> {
        let now = self.clock.now_ms();
        let charge_id = format!("ch_{}", matsuri_core::ids::new_uuid_v7().replace('-', ""));
        // The first record of a key stands; a repeated charge reads it back, in the
        // same statement (the no-op update makes the existing row the one returned).
        sqlx::query_as(
            "INSERT INTO sim_gateway_charges (idem_key, token, amount, status, charge_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (idem_key) DO UPDATE SET status = sim_gateway_charges.status \
             RETURNING status, charge_id",
        )
        .bind(key)
        .bind(token)
        .bind(amount.0)
        .bind(status)
        .bind(&charge_id)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(unavailable)
    }
}

fn unavailable(e: sqlx::Error) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

fn outcome(status: &str, charge_id: String) -> ChargeOutcome {
    match status {
        "approved" => ChargeOutcome::Approved { charge_id },
        "voided" => ChargeOutcome::Declined {
            reason: "the charge was voided".into(),
        },
        "refunded" => ChargeOutcome::Declined {
            reason: "the charge was refunded".into(),
        },
        _ => ChargeOutcome::Declined {
            reason: "the card was declined".into(),
        },
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        let latency = if request.card_token == "tok_slow" {
            self.slow_latency
        } else {
            self.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let status = match request.card_token {
            "tok_gateway_error" => {
                return Err(GatewayError::Unavailable(
                    "simulated gateway error (tok_gateway_error)".into(),
                ));
            }
            "tok_visa" | "tok_slow" if request.amount.0 >= 0 => "approved",
            _ => "declined",
        };
        let (status, charge_id) = self
            .record(
                request.idempotency_key,
                request.card_token,
                request.amount,
                status,
            )
            .await?;
        Ok(outcome(&status, charge_id))
    }

    async fn settle(&self, idempotency_key: &str) -> Result<ChargeOutcome, GatewayError> {
        let (status, charge_id) = self
            .record(idempotency_key, "", Yen::ZERO, "voided")
            .await?;
        Ok(outcome(&status, charge_id))
    }

    async fn refund(&self, idempotency_key: &str) -> Result<(), GatewayError> {
        sqlx::query(
            "UPDATE sim_gateway_charges SET status = 'refunded', updated_at = $2 \
             WHERE idem_key = $1 AND status = 'approved'",
        )
        .bind(idempotency_key)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "payments",
    migrations: &[Migration {
        version: 1,
        name: "simulated gateway ledger",
        sql: include_str!("../migrations/0001_simulated_gateway.sql"),
        postgres_sql: None,
    }],
};
