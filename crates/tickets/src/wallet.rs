//! Wallets (seed 003): users charge a balance first and pay holds from it. A charge
//! adds in one statement; a payment debits with a version check (see `payment.rs`).
//! Every movement is also an entry, so Σ charged = Σ balances + Σ paid can be checked.

use axum::http::StatusCode;

use matsuri_db::{IdempotencyStore, KeyState, StoredResponse};

use crate::{TicketError, TicketService, Wallet};

/// The `Idempotency-Key` a wallet charge carries, and the request's fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct ChargeKey<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// What a wallet charge did.
#[derive(Debug, Clone)]
pub enum Charged {
    Done(Wallet),
    /// The key was used before: what the earlier request left.
    Earlier(KeyState),
}

impl TicketService {
    pub async fn wallet(&self, user: &str) -> Result<Wallet, TicketError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT balance, charged_total, paid_total FROM wallets WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(self.db.reader())
        .await?;
        let (balance, charged_total, paid_total) = row.unwrap_or_default();
        Ok(Wallet {
            balance,
            charged_total,
            paid_total,
        })
    }

    /// Adds `amount` yen to the user's wallet. With a key, the charge and its answer
    /// commit together, so a retried request can never charge twice.
    pub async fn charge_wallet(
        &self,
        user: &str,
        amount: i64,
        key: Option<ChargeKey<'_>>,
    ) -> Result<Charged, TicketError> {
        let max = self.settings.max_wallet_charge;
        if !(1..=max).contains(&amount) {
            return Err(TicketError::invalid(
                "amount",
                format!("must be between 1 and {max}"),
            ));
        }
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        // A new wallet starts with the charge; an existing one adds it, in one statement.
        let (balance, charged_total, paid_total): (i64, i64, i64) = sqlx::query_as(
            "INSERT INTO wallets (user_id, balance, charged_total, paid_total, version, updated_at) \
             VALUES ($1, $2, $2, 0, 1, $3) ON CONFLICT (user_id) DO UPDATE SET \
             balance = wallets.balance + excluded.balance, \
             charged_total = wallets.charged_total + excluded.charged_total, \
             version = wallets.version + 1, updated_at = excluded.updated_at \
             RETURNING balance, charged_total, paid_total",
        )
        .bind(user)
        .bind(amount)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO wallet_entries (id, user_id, kind, amount, created_at) VALUES ($1, $2, 'charge', $3, $4)",
        )
        .bind(matsuri_core::ids::new_uuid_v7())
        .bind(user)
        .bind(amount)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let wallet = Wallet {
            balance,
            charged_total,
            paid_total,
        };
        if let Some(key) = key {
            let answer = StoredResponse::json(StatusCode::OK, &wallet);
            let fresh = IdempotencyStore::record_in(
                &mut tx,
                user,
                key.scope,
                key.key,
                key.fingerprint,
                &answer,
                now,
            )
            .await?;
            if !fresh {
                tx.rollback().await?;
                let earlier = self
                    .idempotency
                    .find(user, key.scope, key.key, key.fingerprint)
                    .await?
                    .unwrap_or(KeyState::InProgress);
                return Ok(Charged::Earlier(earlier));
            }
        }
        tx.commit().await?;
        metrics::counter!("matsuri_wallet_charges_total").increment(1);
        Ok(Charged::Done(wallet))
    }
}
