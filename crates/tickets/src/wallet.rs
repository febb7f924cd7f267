//! Wallets (seed 003): users charge a balance first and pay holds from it. Charges are
//! made by one task (a few on PostgreSQL), a batch of them per transaction; a payment
//! debits with a version check (see `wallet_payments.rs`). Every movement is also an
//! entry, so Σ charged = Σ balances + Σ paid can be checked.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::sync::{mpsc, oneshot};

use matsuri_core::error::StoredResponse;
use matsuri_core::ids::UserId;
use matsuri_core::{SharedClock, Yen};
use matsuri_db::{Db, IdempotencyStore, KeyState, NewKey, batches};

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
    pub async fn wallet(&self, user: &UserId) -> Result<Wallet, TicketError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT balance, charged_total, paid_total FROM wallets WHERE user_id = $1",
        )
        .bind(user.as_str())
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
    /// commit together, so a retried request can never charge twice. Charges arriving
    /// together are made together, in one transaction (see [`write_charges`]).
    pub async fn charge_wallet(
        &self,
        user: &UserId,
        amount: Yen,
        key: Option<ChargeKey<'_>>,
    ) -> Result<Charged, TicketError> {
        let max = self.settings.max_wallet_charge;
        if !(1..=max).contains(&amount.0) {
            return Err(TicketError::invalid(
                "amount",
                format!("must be between 1 and {max}"),
            ));
        }
        let charged = batches::submit(&self.charges, "wallet writer", |done| PendingCharge {
            user: user.as_str().to_owned(),
            amount,
            key: key.map(|k| OwnedKey {
                scope: k.scope.to_owned(),
                key: k.key.to_owned(),
                fingerprint: k.fingerprint.to_owned(),
            }),
            done,
        })
        .await?;
        match charged {
            Ok(Some(wallet)) => Ok(Charged::Done(wallet)),
            Ok(None) => {
                let earlier = match key {
                    Some(key) => self
                        .idempotency
                        .find(user.as_str(), key.scope, key.key, key.fingerprint)
                        .await?
                        .unwrap_or(KeyState::InProgress),
                    None => KeyState::InProgress,
                };
                Ok(Charged::Earlier(earlier))
            }
            Err(message) => Err(TicketError::Internal(anyhow::anyhow!(message))),
        }
    }
}

/// A wallet charge on its way to the writer, and who waits for its outcome: the wallet
/// right after it, `None` when its key was used before, or why it failed.
pub(crate) struct PendingCharge {
    user: String,
    amount: Yen,
    key: Option<OwnedKey>,
    done: oneshot::Sender<Result<Option<Wallet>, String>>,
}

struct OwnedKey {
    scope: String,
    key: String,
    fingerprint: String,
}

/// Starts the tasks that make wallet charges, as many as are waiting (up to what one
/// statement of keys takes) per transaction: a stampede's top-ups cost the writer a few
/// statements a batch instead of a transaction each. They end when the returned sender
/// drops. Must be called inside a tokio runtime.
pub(crate) fn start_charging(db: Db, clock: SharedClock) -> mpsc::Sender<PendingCharge> {
    let most = IdempotencyStore::keys_per_statement();
    let lanes = batches::lanes_for(&db);
    batches::start("wallet_charges", most, lanes, move |charges| {
        let (db, clock) = (db.clone(), clock.clone());
        async move {
            charge_batch(&db, &clock, charges).await;
            Vec::new()
        }
    })
}

/// Makes one batch of charges and tells each waiter how it went.
async fn charge_batch(db: &Db, clock: &SharedClock, batch: Vec<PendingCharge>) {
    // A key given twice in a batch: the first request charges, the others find its answer.
    let mut keys = HashSet::new();
    let (mut charges, mut used): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| {
        c.key
            .as_ref()
            .is_none_or(|k| keys.insert((c.user.clone(), k.scope.clone(), k.key.clone())))
    });
    while !charges.is_empty() {
        let made = batches::retrying(
            || apply_charges(db, clock.now_ms(), &charges),
            batches::is_retryable,
        )
        .await;
        match made {
            Ok(Ok(wallets)) => {
                metrics::counter!("matsuri_wallet_charges_total").increment(charges.len() as u64);
                for (charge, wallet) in charges.drain(..).zip(wallets) {
                    let _ = charge.done.send(Ok(Some(wallet)));
                }
            }
            // Keys another request recorded first: those charges are not made, and the
            // rest go again.
            Ok(Err(taken)) => {
                let (lost, rest): (Vec<_>, Vec<_>) = charges
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| taken.contains(i));
                used.extend(lost.into_iter().map(|(_, charge)| charge));
                charges = rest.into_iter().map(|(_, charge)| charge).collect();
            }
            Err(e) => fail(std::mem::take(&mut charges), &format!("{e:#}")),
        }
    }
    for charge in used {
        let _ = charge.done.send(Ok(None));
    }
}

/// Tells every waiter of `charges` that they failed, and why.
fn fail(charges: Vec<PendingCharge>, why: &str) {
    for charge in charges {
        let _ = charge.done.send(Err(why.to_owned()));
    }
}

/// In one transaction: each wallet of the batch gets the sum of its charges, every
/// charge its entry, and every key its answer (the wallet right after that charge).
/// When a key turns out to be used before, nothing is made and the charges (by their
/// place in `charges`) whose keys were come back.
async fn apply_charges(
    db: &Db,
    now: i64,
    charges: &[PendingCharge],
) -> Result<Result<Vec<Wallet>, Vec<usize>>, sqlx::Error> {
    let dialect = db.dialect();
    // Users in one order, so that batches of several processes never deadlock.
    let mut totals: BTreeMap<&str, Yen> = BTreeMap::new();
    for charge in charges {
        let total = totals.entry(charge.user.as_str()).or_default();
        *total = total
            .plus(charge.amount)
            .ok_or_else(|| sqlx::Error::Protocol("a wallet's charges overflow".into()))?;
    }
    let mut tx = db.begin().await?;
    let sql = format!(
        "INSERT INTO wallets (user_id, balance, charged_total, paid_total, version, updated_at) \
         VALUES {} ON CONFLICT (user_id) DO UPDATE SET \
         balance = wallets.balance + excluded.balance, \
         charged_total = wallets.charged_total + excluded.charged_total, \
         version = wallets.version + 1, updated_at = excluded.updated_at \
         RETURNING user_id, balance, charged_total, paid_total",
        matsuri_db::value_rows(dialect, totals.len(), 6)
    );
    let mut upsert = sqlx::query_as::<_, (String, i64, i64, i64)>(sqlx::AssertSqlSafe(sql));
    for (user, total) in &totals {
        upsert = upsert
            .bind(*user)
            .bind(total.0)
            .bind(total.0)
            .bind(0_i64)
            .bind(1_i64)
            .bind(now);
    }
    let mut after: HashMap<String, Wallet> = upsert
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(user, balance, charged_total, paid_total)| {
            let wallet = Wallet {
                balance,
                charged_total,
                paid_total,
            };
            (user, wallet)
        })
        .collect();
    // Each charge's answer is its wallet right after it: the final one less the user's
    // later charges of the batch.
    let mut wallets = vec![Wallet::default(); charges.len()];
    for (i, charge) in charges.iter().enumerate().rev() {
        let wallet = after
            .get_mut(&charge.user)
            .ok_or_else(|| sqlx::Error::Protocol("a charged wallet did not come back".into()))?;
        wallets[i] = *wallet;
        wallet.balance -= charge.amount.0;
        wallet.charged_total -= charge.amount.0;
    }
    let sql = format!(
        "INSERT INTO wallet_entries (id, user_id, kind, amount, created_at) VALUES {}",
        matsuri_db::value_rows(dialect, charges.len(), 5)
    );
    let mut entries = sqlx::query(sqlx::AssertSqlSafe(sql));
    for charge in charges {
        entries = entries
            .bind(matsuri_core::ids::new_uuid_v7())
            .bind(charge.user.as_str())
            .bind("charge")
            .bind(charge.amount.0)
            .bind(now);
    }
    entries.execute(&mut *tx).await?;
    let answers: Vec<StoredResponse> = wallets.iter().map(StoredResponse::ok).collect();
    // The keyed charges, by their place in `charges`, and their keys.
    let (keyed, keys): (Vec<usize>, Vec<NewKey<'_>>) = charges
        .iter()
        .zip(&answers)
        .enumerate()
        .filter_map(|(i, (charge, answer))| {
            let k = charge.key.as_ref()?;
            let key = NewKey {
                user_id: &charge.user,
                scope: &k.scope,
                key: &k.key,
                fingerprint: &k.fingerprint,
                response: Some(answer),
            };
            Some((i, key))
        })
        .unzip();
    let fresh = IdempotencyStore::insert_all(&mut *tx, dialect, &keys, now).await?;
    if fresh.contains(&false) {
        tx.rollback().await?;
        let taken = keyed
            .into_iter()
            .zip(fresh)
            .filter_map(|(i, new)| (!new).then_some(i))
            .collect();
        return Ok(Err(taken));
    }
    tx.commit().await?;
    Ok(Ok(wallets))
}
