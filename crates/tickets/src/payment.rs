//! Paying for a hold (seed 001 §4 "決済フロー", seed 003 step 5), by card or wallet.
//!
//! Wallet: see `wallet_payments.rs`; one transaction debits the wallet, marks the
//! reservation paid and its seats sold, issues the tickets, releases the access token and
//! writes `ticket.purchased`. Card: the gateway call happens outside any transaction
//! (architecture principle 5): the reservation is marked as charging (which keeps its
//! seats a grace period past the hold), the gateway is charged with a fresh idempotency
//! key, and then a confirming transaction does the same — or, if the seats are somehow
//! gone, the charge is refunded. The sweeper settles charges a crash interrupted.

use std::collections::HashMap;

use matsuri_core::ApiError;
use matsuri_core::clock::Millis;
use matsuri_core::error::StoredResponse;
use matsuri_core::ids::UserId;
use matsuri_core::timefmt::rfc3339;
use matsuri_db::{Conn, IdempotencyStore, KeyLink, Param, Statements, Tx};
use matsuri_payments::{ChargeOutcome, ChargeRequest};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::holds::{ReservationRow, end_holds};
use crate::issued::{TicketRow, ticket_of};
use crate::qr::Signer;
use crate::seat_feed::SeatChange;
use crate::{Purchase, SeatStatus, TicketError, TicketPurchased, TicketService, topics};

/// How a reservation is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    Card { token: String },
    Wallet,
}

/// What becomes of the `Idempotency-Key` that started a card charge when the charge
/// ends without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOfCharge {
    /// The request is still there and stores its own answer.
    AnsweredByRequest,
    /// The request is gone and nothing was charged: the key is freed, so sending it again
    /// pays afresh instead of waiting for an answer that will never come.
    Released,
}

impl TicketService {
    /// Pays for the user's held reservation and returns its tickets.
    pub async fn pay(
        &self,
        user: &UserId,
        reservation_id: &str,
        method: PaymentMethod,
        key: Option<KeyLink<'_>>,
    ) -> Result<Purchase, TicketError> {
        let row = self.reservation_row(user.as_str(), reservation_id).await?;
        row.payable(self.clock.now_ms())?;
        let outcome = match method {
            PaymentMethod::Wallet => self.pay_by_wallet(&row, key).await,
            PaymentMethod::Card { token } => self.pay_by_card(&row, &token, key).await,
        };
        let label = match &outcome {
            Ok(_) => "paid",
            Err(TicketError::InsufficientBalance { .. } | TicketError::PaymentDeclined(_)) => {
                "declined"
            }
            Err(TicketError::ReservationExpired) => "expired",
            Err(_) => "failed",
        };
        metrics::counter!("matsuri_ticket_payments_total", "outcome" => label).increment(1);
        let purchase = outcome?;
        self.after_purchase(&row).await;
        Ok(purchase)
    }

    /// What follows a purchase outside its transaction: the slot goes to the next in
    /// line, and the sold seats stay locked in `coord`.
    pub(crate) async fn after_purchase(&self, row: &ReservationRow) {
        if let Some(token) = &row.access_token {
            self.free_slot(&row.event_id, &row.user_id, token).await;
        }
        let seats: Vec<String> = serde_json::from_str(&row.seat_ids).unwrap_or_default();
        self.lock_sold_seats(&row.event_id, &seats).await;
        tracing::info!(reservation_id = %row.id, event_id = %row.event_id, "tickets issued");
    }

    async fn pay_by_card(
        &self,
        row: &ReservationRow,
        card_token: &str,
        key: Option<KeyLink<'_>>,
    ) -> Result<Purchase, TicketError> {
        let now = self.clock.now_ms();
        let charge_key = format!(
            "reservation-{}-{}",
            row.id,
            matsuri_core::ids::new_uuid_v7()
        );
        self.start_charge(row, &charge_key, key, now).await?;
        let charge = self
            .gateway
            .charge(&ChargeRequest {
                idempotency_key: &charge_key,
                amount: row.amount,
                card_token,
            })
            .await;
        match charge {
            Ok(ChargeOutcome::Approved { charge_id }) => {
                self.finish_card_payment(row, &charge_key, &charge_id).await
            }
            Ok(ChargeOutcome::Declined { reason }) => {
                self.end_charge(row, &charge_key, KeyOfCharge::AnsweredByRequest)
                    .await?;
                Err(TicketError::PaymentDeclined(reason))
            }
            Err(e) => {
                tracing::warn!(error = %e, reservation_id = %row.id, "payment gateway failed");
                self.end_charge(row, &charge_key, KeyOfCharge::AnsweredByRequest)
                    .await?;
                Err(TicketError::GatewayFailed)
            }
        }
    }

    /// Marks the hold as charging, so its seats stay held (for the grace period past the
    /// hold) while the gateway answers, and no second charge starts beside it.
    async fn start_charge(
        &self,
        row: &ReservationRow,
        charge_key: &str,
        key: Option<KeyLink<'_>>,
        now: Millis,
    ) -> Result<(), TicketError> {
        let mut tx = self.db.begin().await?;
        let started = sqlx::query(
            "UPDATE reservations SET charge_key = $2, charging_since = $3, updated_at = $3 \
             WHERE id = $1 AND status = 'held' AND expires_at > $3 AND charging_since IS NULL",
        )
        .bind(&row.id)
        .bind(charge_key)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started == 0 {
            tx.rollback().await?;
            let current = self.reservation_row(&row.user_id, &row.id).await?;
            current.payable(now)?;
            return Err(TicketError::ReservationExpired);
        }
        let grace = self.settings.charge_grace_seconds.max(1) * 1000;
        sqlx::query(
            "UPDATE seats SET held_until = $2 WHERE reservation_id = $1 AND status = 'held'",
        )
        .bind(&row.id)
        .bind(row.expires_at.max(now) + grace)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = key {
            key.link(&mut tx, &row.id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A charge that did not go through: the hold is as it was before.
    pub(crate) async fn end_charge(
        &self,
        row: &ReservationRow,
        charge_key: &str,
        key: KeyOfCharge,
    ) -> Result<(), TicketError> {
        let mut tx = self.db.begin().await?;
        let ended = sqlx::query(
            "UPDATE reservations SET charge_key = NULL, charging_since = NULL, updated_at = $3 \
             WHERE id = $1 AND charge_key = $2 AND status = 'held'",
        )
        .bind(&row.id)
        .bind(charge_key)
        .bind(self.clock.now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 1 {
            sqlx::query(
                "UPDATE seats SET held_until = $2 WHERE reservation_id = $1 AND status = 'held'",
            )
            .bind(&row.id)
            .bind(row.expires_at)
            .execute(&mut *tx)
            .await?;
            if key == KeyOfCharge::Released {
                IdempotencyStore::release_for_resource(&mut tx, &row.id).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// An approved charge: confirm the purchase, or, when the seats are gone after all,
    /// refund the charge and let the hold end.
    pub(crate) async fn finish_card_payment(
        &self,
        row: &ReservationRow,
        charge_key: &str,
        charge_id: &str,
    ) -> Result<Purchase, TicketError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        match self.confirm_card(&mut tx, row, charge_id, now).await {
            Ok((purchase, sold)) => {
                tx.commit().await?;
                self.seat_feed.note(&row.event_id, sold);
                Ok(purchase)
            }
            Err(TicketError::ReservationExpired) => {
                tx.rollback().await?;
                tracing::warn!(reservation_id = %row.id, "seats gone after an approved charge: refunding");
                self.gateway
                    .refund(charge_key)
                    .await
                    .map_err(|e| TicketError::Internal(e.into()))?;
                let mut tx = self.db.begin().await?;
                let ended = sqlx::query(
                    "UPDATE reservations SET status = 'expired', charging_since = NULL, updated_at = $2 \
                     WHERE id = $1 AND status = 'held'",
                )
                .bind(&row.id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let released = if ended == 1 {
                    end_holds(&mut tx, &[(row.id.clone(), row.access_token.clone())], now).await?
                } else {
                    Vec::new()
                };
                // Final for the key that paid, whether its request is still there or not.
                let answer =
                    StoredResponse::refusal(&ApiError::from(TicketError::ReservationExpired));
                let mut write = Statements::new();
                IdempotencyStore::complete_for_resource(&mut write, &row.id, &answer, now);
                write.run(&mut tx).await?;
                tx.commit().await?;
                self.note_seats(released, SeatStatus::Available);
                Err(TicketError::ReservationExpired)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// A card purchase, inside the caller's transaction: reservation paid, seats sold,
    /// tickets issued, access token released, `ticket.purchased` written, and the answer
    /// stored for the `Idempotency-Key` that paid; with the seats' changes for the seat
    /// map. `ReservationExpired` when the hold is no longer held or its seats are no
    /// longer all held by it; the caller then rolls back.
    async fn confirm_card(
        &self,
        tx: &mut Tx,
        row: &ReservationRow,
        charge_id: &str,
        now: Millis,
    ) -> Result<(Purchase, Vec<SeatChange>), TicketError> {
        let paid = sqlx::query(
            "UPDATE reservations SET status = 'paid', payment_method = 'card', charge_id = $2, \
             charging_since = NULL, paid_at = $3, updated_at = $3 WHERE id = $1 AND status = 'held'",
        )
        .bind(&row.id)
        .bind(charge_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if paid == 0 {
            return Err(TicketError::ReservationExpired);
        }
        let seats = sell_held_seats(tx, &[&row.id], now)
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        if i64::try_from(seats.len()).unwrap_or(-1) != row.seat_count {
            return Err(TicketError::ReservationExpired);
        }
        let sold = sold_changes(&seats);
        let purchase = issue(&self.signer, row, seats, now)?;
        insert_tickets(tx, &[(row, &purchase)], now).await?;
        let mut write = Statements::new();
        record_purchase(&mut write, row, &purchase, "card", now)?;
        write.run(tx).await?;
        Ok((purchase, sold))
    }
}

/// Sells the seats the reservations still hold, in one statement a few hundred at a
/// time; returns each reservation's sold seats. A card payment sells one reservation's,
/// a batch of wallet payments many.
pub(crate) async fn sell_held_seats(
    conn: &mut Conn,
    reservation_ids: &[&str],
    now: Millis,
) -> Result<HashMap<String, Vec<SoldSeat>>, sqlx::Error> {
    let mut sold: HashMap<String, Vec<SoldSeat>> = HashMap::new();
    for chunk in reservation_ids.chunks(500) {
        let sql = format!(
            "UPDATE seats SET status = 'sold', held_until = NULL, updated_at = $1, version = version + 1 \
             WHERE status = 'held' AND reservation_id IN ({}) \
             RETURNING {SOLD_SEAT_COLUMNS}, reservation_id",
            matsuri_db::parameter_list(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let reservation: String = row.try_get("reservation_id")?;
            sold.entry(reservation)
                .or_default()
                .push(SoldSeat::from_row(&row)?);
        }
    }
    Ok(sold)
}

/// The signed tickets for a paid reservation's seats, in seat order.
pub(crate) fn issue(
    signer: &Signer,
    row: &ReservationRow,
    mut seats: Vec<SoldSeat>,
    now: Millis,
) -> Result<Purchase, TicketError> {
    seats.sort_by_key(|seat| seat.position);
    let mut tickets = Vec::with_capacity(seats.len());
    for seat in seats {
        let id = matsuri_core::ids::new_uuid_v7();
        let label = format!("{} {}-{}", seat.section, seat.row_no, seat.seat_no);
        let qr_payload = signer.sign(&id, &row.event_id, &seat.id, &label, now)?;
        tickets.push(ticket_of(TicketRow {
            id,
            event_id: row.event_id.clone(),
            seat_id: seat.id,
            section: seat.section,
            row_no: seat.row_no,
            seat_no: seat.seat_no,
            price: seat.price,
            status: "valid".to_owned(),
            qr_payload,
        }));
    }
    Ok(Purchase {
        reservation_id: row.id.clone(),
        tickets,
    })
}

/// A seat as selling it returns it (`RETURNING` [`SOLD_SEAT_COLUMNS`]).
pub(crate) struct SoldSeat {
    pub id: String,
    pub section: String,
    pub row_no: i64,
    pub seat_no: i64,
    pub price: i64,
    pub position: i64,
    pub version: i64,
}

const SOLD_SEAT_COLUMNS: &str = "id, section, row_no, seat_no, price, position, version";

impl<'r> sqlx::FromRow<'r, AnyRow> for SoldSeat {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            section: row.try_get("section")?,
            row_no: row.try_get("row_no")?,
            seat_no: row.try_get("seat_no")?,
            price: row.try_get("price")?,
            position: row.try_get("position")?,
            version: row.try_get("version")?,
        })
    }
}

/// The seat map's changes for seats just sold.
pub(crate) fn sold_changes(seats: &[SoldSeat]) -> Vec<SeatChange> {
    seats
        .iter()
        .map(|seat| SeatChange {
            seat_id: seat.id.clone(),
            status: SeatStatus::Sold,
            version: seat.version,
        })
        .collect()
}

/// The purchases' tickets, in multi-row statements.
pub(crate) async fn insert_tickets(
    tx: &mut Tx,
    purchases: &[(&ReservationRow, &Purchase)],
    now: Millis,
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 12;
    let dialect = matsuri_db::Dialect::of(tx);
    let tickets: Vec<(&ReservationRow, &crate::Ticket)> = purchases
        .iter()
        .flat_map(|(row, purchase)| purchase.tickets.iter().map(move |t| (*row, t)))
        .collect();
    for batch in tickets.chunks(matsuri_db::rows_per_statement(COLUMNS)) {
        let sql = format!(
            "INSERT INTO tickets (id, event_id, seat_id, reservation_id, user_id, section, row_no, \
             seat_no, price, qr_payload, status, created_at) VALUES {}",
            matsuri_db::value_rows(dialect, batch.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (row, ticket) in batch {
            query = query
                .bind(ticket.id.as_str())
                .bind(ticket.event_id.as_str())
                .bind(ticket.seat_id.as_str())
                .bind(row.id.as_str())
                .bind(row.user_id.as_str())
                .bind(ticket.section.as_str())
                .bind(ticket.row)
                .bind(ticket.number)
                .bind(ticket.price)
                .bind(ticket.qr_payload.as_str())
                .bind("valid")
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What follows a purchase in its transaction, added to statements sent together: the
/// access token released, `ticket.purchased` written, and the answer stored for the
/// `Idempotency-Key` that paid.
pub(crate) fn record_purchase(
    write: &mut Statements,
    row: &ReservationRow,
    purchase: &Purchase,
    method: &str,
    now: Millis,
) -> Result<(), TicketError> {
    if let Some(token) = &row.access_token {
        write.add(
            "UPDATE access_tokens SET released_at = $2 WHERE token = $1",
            vec![Param::from(token), Param::from(now)],
        );
    }
    let event = TicketPurchased {
        reservation_id: row.id.clone(),
        event_id: row.event_id.clone(),
        user_id: row.user_id.clone(),
        amount: row.amount.0,
        payment_method: method.to_owned(),
        ticket_ids: purchase.tickets.iter().map(|t| t.id.clone()).collect(),
        seat_ids: purchase.tickets.iter().map(|t| t.seat_id.clone()).collect(),
        paid_at: rfc3339(now),
    };
    matsuri_bus::publish_with(write, now, topics::TICKET_PURCHASED, Some(&row.id), &event)?;
    let answer = StoredResponse::created(purchase);
    IdempotencyStore::complete_for_resource(write, &row.id, &answer, now);
    Ok(())
}
