//! Paying holds from the wallet (seed 003 step 5). Payments are made by one task (a few
//! on PostgreSQL), a batch per transaction: each wallet is debited with a version check
//! (the version read at the start of the transaction; a lost check rolls the batch back
//! and it goes again), each reservation marked paid and its seats sold, the tickets
//! issued, the access tokens released and `ticket.purchased` written — for the whole
//! batch in a few statements. A batch pays each user once; a user's second payment
//! waits for the next batch (or, on PostgreSQL, may go in another lane's, whose version
//! check then settles the race).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use matsuri_core::clock::Millis;
use matsuri_core::{SharedClock, Yen};
use matsuri_db::{Db, KeyLink, Statements, batches};

use crate::holds::ReservationRow;
use crate::payment::{insert_tickets, issue, record_purchase, sell_held_seats, sold_changes};
use crate::seat_feed::SeatFeed;
use crate::{Purchase, TicketError, TicketService, qr};

/// A wallet payment on its way to the writer, and who waits for its tickets or why it
/// failed.
pub(crate) struct PendingPayment {
    row: ReservationRow,
    /// The `Idempotency-Key` that pays, as user, scope and key.
    key: Option<(String, String, String)>,
    done: oneshot::Sender<Result<Purchase, TicketError>>,
}

/// Payments a batch takes at most.
const PAYMENTS_PER_BATCH: usize = 64;

impl TicketService {
    /// Pays the (payable) hold from the user's wallet, in the next batch.
    pub(crate) async fn pay_by_wallet(
        &self,
        row: &ReservationRow,
        key: Option<KeyLink<'_>>,
    ) -> Result<Purchase, TicketError> {
        batches::submit(&self.payments, "wallet payer", |done| PendingPayment {
            row: row.clone(),
            key: key.map(|k| (k.user_id.to_owned(), k.scope.to_owned(), k.key.to_owned())),
            done,
        })
        .await?
    }
}

/// What the task needs of the service.
#[derive(Clone)]
struct Payer {
    db: Db,
    clock: SharedClock,
    signer: Arc<qr::Signer>,
    feed: Arc<SeatFeed>,
}

/// Starts the tasks that make wallet payments; they end when the returned sender drops.
/// Must be called inside a tokio runtime.
pub(crate) fn start_paying(
    db: Db,
    clock: SharedClock,
    signer: Arc<qr::Signer>,
    feed: Arc<SeatFeed>,
) -> mpsc::Sender<PendingPayment> {
    let lanes = batches::lanes_for(&db);
    let payer = Payer {
        db,
        clock,
        signer,
        feed,
    };
    batches::start("wallet_payments", PAYMENTS_PER_BATCH, lanes, move |batch| {
        let payer = payer.clone();
        async move { payer.pay_batch(batch).await }
    })
}

/// How a batch's transaction ended.
enum Outcome {
    /// Committed: each payment's tickets, or why it was refused.
    Done(Vec<Result<Purchase, TicketError>>),
    /// Rolled back: these payments (by place) cannot be made, and the others go again.
    Without(Vec<(usize, TicketError)>),
    /// Rolled back: another transaction changed one of the wallets first.
    Conflict,
}

impl Payer {
    /// Makes one batch of payments and tells each waiter how it went.
    async fn pay_batch(&self, batch: Vec<PendingPayment>) -> Vec<PendingPayment> {
        let mut users = HashSet::new();
        let (mut payments, later): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|p| users.insert(p.row.user_id.clone()));
        let mut attempt = 1;
        while !payments.is_empty() {
            let outcome = self.apply(self.clock.now_ms(), &payments).await;
            match outcome {
                Ok(Outcome::Done(results)) => {
                    for (payment, result) in payments.drain(..).zip(results) {
                        let _ = payment.done.send(result);
                    }
                }
                Ok(Outcome::Without(refused)) => {
                    let mut refused: HashMap<usize, TicketError> = refused.into_iter().collect();
                    let mut rest = Vec::with_capacity(payments.len());
                    for (i, payment) in payments.into_iter().enumerate() {
                        match refused.remove(&i) {
                            Some(why) => {
                                let _ = payment.done.send(Err(why));
                            }
                            None => rest.push(payment),
                        }
                    }
                    payments = rest;
                }
                Ok(Outcome::Conflict) if attempt < batches::ATTEMPTS => {
                    metrics::counter!("matsuri_wallet_version_conflicts_total").increment(1);
                    batches::back_off(attempt).await;
                    attempt += 1;
                }
                Err(e) if attempt < batches::ATTEMPTS && batches::is_retryable(&e) => {
                    batches::back_off(attempt).await;
                    attempt += 1;
                }
                other => {
                    let why = match other {
                        Err(e) => format!("{e:#}"),
                        _ => format!(
                            "the wallet debits lost {} version checks in a row",
                            batches::ATTEMPTS
                        ),
                    };
                    for payment in payments.drain(..) {
                        let failed = anyhow::anyhow!("paying from the wallet: {why}");
                        let _ = payment.done.send(Err(TicketError::Internal(failed)));
                    }
                }
            }
        }
        later
    }

    /// The batch in one transaction. A payment the wallet cannot cover, or whose hold is
    /// no longer payable, is refused without touching anything; the rest are made.
    async fn apply(
        &self,
        now: Millis,
        payments: &[PendingPayment],
    ) -> Result<Outcome, sqlx::Error> {
        let dialect = self.db.dialect();
        let mut tx = self.db.begin().await?;
        let mut results: Vec<Option<Result<Purchase, TicketError>>> =
            payments.iter().map(|_| None).collect();

        let sql = format!(
            "SELECT user_id, balance, version FROM wallets WHERE user_id IN ({})",
            matsuri_db::parameter_list(1, payments.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for payment in payments {
            query = query.bind(payment.row.user_id.as_str());
        }
        let wallets: HashMap<String, (i64, i64)> = query
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(user, balance, version)| (user, (balance, version)))
            .collect();
        for (payment, result) in payments.iter().zip(&mut results) {
            let (balance, _) = wallets.get(&payment.row.user_id).copied().unwrap_or((0, 0));
            let balance = Yen(balance);
            if balance < payment.row.amount {
                let amount = payment.row.amount;
                *result = Some(Err(TicketError::InsufficientBalance { balance, amount }));
            }
        }

        let open = unsettled(&results);
        if !open.is_empty() {
            let sql = format!(
                "UPDATE reservations SET status = 'paid', payment_method = 'wallet', charge_id = NULL, \
                 paid_at = $1, updated_at = $1 \
                 WHERE status = 'held' AND expires_at > $1 AND charging_since IS NULL AND id IN ({}) \
                 RETURNING id",
                matsuri_db::parameter_list(2, open.len())
            );
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(now);
            for &i in &open {
                query = query.bind(payments[i].row.id.as_str());
            }
            let paid: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
            for &i in &open {
                if !paid.contains(&payments[i].row.id) {
                    results[i] = Some(Err(TicketError::ReservationExpired));
                }
            }
        }
        let open = unsettled(&results);
        if open.is_empty() {
            tx.rollback().await?;
            return Ok(Outcome::Done(results.into_iter().flatten().collect()));
        }

        // Holds that cost nothing leave the wallet alone.
        let debits: Vec<&PendingPayment> = open
            .iter()
            .map(|&i| &payments[i])
            .filter(|p| p.row.amount > Yen::ZERO)
            .collect();
        if !debits.is_empty() {
            let sql = format!(
                "UPDATE wallets SET balance = balance - v.column2, paid_total = paid_total + v.column2, \
                 version = version + 1, updated_at = v.column4 FROM (VALUES {}) AS v \
                 WHERE wallets.user_id = v.column1 AND wallets.version = v.column3 \
                 AND wallets.balance >= v.column2 RETURNING user_id",
                matsuri_db::value_rows(dialect, debits.len(), 4)
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for payment in &debits {
                let user = payment.row.user_id.as_str();
                let version = wallets.get(user).map_or(0, |w| w.1);
                query = query
                    .bind(user)
                    .bind(payment.row.amount.0)
                    .bind(version)
                    .bind(now);
            }
            if query.fetch_all(&mut *tx).await?.len() < debits.len() {
                tx.rollback().await?;
                return Ok(Outcome::Conflict);
            }
        }

        let ids: Vec<&str> = open.iter().map(|&i| payments[i].row.id.as_str()).collect();
        let mut sold = sell_held_seats(&mut tx, &ids, now).await?;
        // A hold whose seats are no longer all its own has ended (the single path's
        // answer for it); the batch goes again without it.
        let lost: Vec<(usize, TicketError)> = open
            .iter()
            .filter(|&&i| {
                let row = &payments[i].row;
                let count = sold.get(&row.id).map_or(0, Vec::len);
                i64::try_from(count).ok() != Some(row.seat_count)
            })
            .map(|&i| (i, TicketError::ReservationExpired))
            .collect();
        if !lost.is_empty() {
            tx.rollback().await?;
            return Ok(Outcome::Without(lost));
        }

        if !debits.is_empty() {
            let sql = format!(
                "INSERT INTO wallet_entries (id, user_id, kind, amount, reservation_id, created_at) \
                 VALUES {}",
                matsuri_db::value_rows(dialect, debits.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for payment in &debits {
                query = query
                    .bind(matsuri_core::ids::new_uuid_v7())
                    .bind(payment.row.user_id.as_str())
                    .bind("payment")
                    .bind(-payment.row.amount.0)
                    .bind(payment.row.id.as_str())
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        let mut purchases = Vec::with_capacity(open.len());
        let mut changes = Vec::with_capacity(open.len());
        for &i in &open {
            let row = &payments[i].row;
            let seats = sold.remove(&row.id).unwrap_or_default();
            changes.push((row.event_id.clone(), sold_changes(&seats)));
            let purchase = issue(&self.signer, row, seats, now)
                .map_err(|e| sqlx::Error::Protocol(format!("issuing tickets: {e}")))?;
            purchases.push((i, purchase));
        }
        let issued: Vec<(&ReservationRow, &Purchase)> = purchases
            .iter()
            .map(|(i, purchase)| (&payments[*i].row, purchase))
            .collect();
        insert_tickets(&mut tx, &issued, now).await?;
        let mut write = Statements::new();
        for (i, purchase) in &purchases {
            let payment = &payments[*i];
            if let Some((user_id, scope, key)) = &payment.key {
                let link = KeyLink {
                    user_id,
                    scope,
                    key,
                };
                link.link_with(&mut write, &payment.row.id);
            }
            record_purchase(&mut write, &payment.row, purchase, "wallet", now)
                .map_err(|e| sqlx::Error::Protocol(format!("recording a purchase: {e}")))?;
        }
        write.run(&mut tx).await?;
        tx.commit().await?;
        for (event_id, sold) in changes {
            self.feed.note(&event_id, sold);
        }
        for (i, purchase) in purchases {
            results[i] = Some(Ok(purchase));
        }
        Ok(Outcome::Done(results.into_iter().flatten().collect()))
    }
}

/// The places of the payments not yet settled.
fn unsettled(results: &[Option<Result<Purchase, TicketError>>]) -> Vec<usize> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_none().then_some(i))
        .collect()
}
