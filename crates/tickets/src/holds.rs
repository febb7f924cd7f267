//! Seat holds (seed 001 §4 "seat lock", seed 003 step 4): every requested seat or none,
//! each taken by one conditional `UPDATE` whose condition is "available, or held by a
//! hold that has ended"; seats are taken in id order so two holds never wait on each
//! other. A hold lasts the event's `hold_seconds`.

use std::collections::HashSet;

use matsuri_core::clock::Millis;
use matsuri_core::ids::parse_uuid;
use matsuri_core::timefmt::rfc3339;
use matsuri_core::{CURRENCY, FieldError};

use crate::{Reservation, ReservationStatus, TicketError, TicketService};

/// A reservation row as stored.
#[derive(Debug, Clone)]
pub(crate) struct ReservationRow {
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    pub status: String,
    pub seat_ids: String,
    pub seat_count: i64,
    pub amount: i64,
    pub expires_at: i64,
    pub access_token: Option<String>,
    pub charging_since: Option<i64>,
    pub charge_key: Option<String>,
}

pub(crate) const RESERVATION_COLUMNS: &str = "id, event_id, user_id, status, seat_ids, seat_count, amount, expires_at, \
     access_token, charging_since, charge_key";

pub(crate) type ReservationTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

impl From<ReservationTuple> for ReservationRow {
    fn from(t: ReservationTuple) -> Self {
        let (
            id,
            event_id,
            user_id,
            status,
            seat_ids,
            seat_count,
            amount,
            expires_at,
            access_token,
            charging_since,
            charge_key,
        ) = t;
        Self {
            id,
            event_id,
            user_id,
            status,
            seat_ids,
            seat_count,
            amount,
            expires_at,
            access_token,
            charging_since,
            charge_key,
        }
    }
}

impl ReservationRow {
    /// The status a client sees: a hold past its end has expired even before the sweeper
    /// has released it.
    pub fn status_at(&self, now: Millis) -> ReservationStatus {
        match self.status.as_str() {
            "paid" => ReservationStatus::Paid,
            "cancelled" => ReservationStatus::Cancelled,
            "held" if self.expires_at > now || self.charging_since.is_some() => {
                ReservationStatus::Held
            }
            _ => ReservationStatus::Expired,
        }
    }

    /// Why the hold cannot be paid now, if it cannot: paid already, a card charge under
    /// way, or over.
    pub fn payable(&self, now: Millis) -> Result<(), TicketError> {
        match self.status.as_str() {
            "paid" => Err(TicketError::AlreadyPaid),
            "held" if self.charging_since.is_some() => Err(TicketError::PaymentInProgress),
            "held" if self.expires_at > now => Ok(()),
            _ => Err(TicketError::ReservationExpired),
        }
    }

    pub fn to_reservation(&self, now: Millis) -> Reservation {
        Reservation {
            reservation_id: self.id.clone(),
            event_id: self.event_id.clone(),
            status: self.status_at(now),
            seat_ids: serde_json::from_str(&self.seat_ids).unwrap_or_default(),
            amount: self.amount,
            currency: CURRENCY.to_owned(),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

impl TicketService {
    /// Checks a hold request's seat ids: 1 to `max_seats_per_hold`, no repeats. Sorted, so
    /// seats are always taken in the same order.
    pub fn parse_seat_ids(&self, seat_ids: &[String]) -> Result<Vec<String>, TicketError> {
        let max = self.settings.max_seats_per_hold;
        if seat_ids.is_empty() || seat_ids.len() > max {
            return Err(TicketError::invalid(
                "seat_ids",
                format!("must hold 1 to {max} seats"),
            ));
        }
        let mut seen = HashSet::new();
        let mut errors = Vec::new();
        let mut ids = Vec::with_capacity(seat_ids.len());
        for (i, id) in seat_ids.iter().enumerate() {
            match parse_uuid(id) {
                Some(id) if seen.insert(id.clone()) => ids.push(id),
                Some(_) => errors.push(FieldError::new(
                    format!("seat_ids[{i}]"),
                    "appears more than once",
                )),
                None => errors.push(FieldError::new(
                    format!("seat_ids[{i}]"),
                    "is not a seat id",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(TicketError::Invalid(errors));
        }
        ids.sort();
        Ok(ids)
    }

    /// Holds every seat in `seat_ids` (checked by [`Self::parse_seat_ids`]) for the
    /// user, or none: 409 `seat_unavailable` when any is taken or unknown.
    pub async fn hold_seats(
        &self,
        event_id: &str,
        user: &str,
        access_token: Option<&str>,
        seat_ids: Vec<String>,
    ) -> Result<Reservation, TicketError> {
        let event = self.event_row(event_id).await?;
        let now = self.clock.now_ms();
        if !event.on_sale(now) {
            return Err(TicketError::SaleClosed);
        }
        let token = self.check_access(event_id, user, access_token).await?;
        let reservation_id = matsuri_core::ids::new_uuid_v7();
        let expires_at = now + event.hold_seconds * 1000;
        let Some(locked) = self
            .lock_seats(event_id, &seat_ids, &reservation_id, expires_at, now)
            .await
        else {
            metrics::counter!("matsuri_seat_holds_total", "outcome" => "conflict").increment(1);
            return Err(TicketError::SeatUnavailable);
        };
        let held = self
            .hold_in_db(
                event_id,
                user,
                &token,
                &reservation_id,
                &seat_ids,
                expires_at,
                now,
            )
            .await;
        if held.is_err() {
            self.unlock_seats(event_id, &locked, &reservation_id).await;
        }
        let amount = held?;
        metrics::counter!("matsuri_seat_holds_total", "outcome" => "held").increment(1);
        tracing::info!(event_id, reservation_id = %reservation_id, seats = seat_ids.len(), "seats held");
        Ok(Reservation {
            reservation_id,
            event_id: event_id.to_owned(),
            status: ReservationStatus::Held,
            seat_ids,
            amount,
            currency: CURRENCY.to_owned(),
            expires_at: rfc3339(expires_at),
        })
    }

    /// The hold itself, in one transaction; returns its amount.
    #[allow(clippy::too_many_arguments)]
    async fn hold_in_db(
        &self,
        event_id: &str,
        user: &str,
        token: &str,
        reservation_id: &str,
        seat_ids: &[String],
        expires_at: Millis,
        now: Millis,
    ) -> Result<i64, TicketError> {
        let mut tx = self.db.begin().await?;
        // The caller's own holds that have ended no longer count against the limit.
        let ended: Vec<(String, Option<String>)> = sqlx::query_as(
            "UPDATE reservations SET status = 'expired', updated_at = $2 \
             WHERE access_token = $1 AND status = 'held' AND charging_since IS NULL AND expires_at <= $2 \
             RETURNING id, access_token",
        )
        .bind(token)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        end_holds(&mut tx, &ended, now).await?;
        let counted = sqlx::query(
            "UPDATE access_tokens SET live_holds = live_holds + 1 WHERE token = $1 AND live_holds < $2",
        )
        .bind(token)
        .bind(self.settings.max_holds_per_admission.max(1))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if counted == 0 {
            tx.rollback().await?;
            return Err(TicketError::HoldLimitReached);
        }
        let mut amount: i64 = 0;
        for seat_id in seat_ids {
            let price: Option<i64> = sqlx::query_scalar(
                "UPDATE seats SET status = 'held', reservation_id = $3, held_until = $4, updated_at = $5 \
                 WHERE id = $1 AND event_id = $2 \
                 AND (status = 'available' OR (status = 'held' AND held_until <= $5)) RETURNING price",
            )
            .bind(seat_id)
            .bind(event_id)
            .bind(reservation_id)
            .bind(expires_at)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(price) = price else {
                tx.rollback().await?;
                metrics::counter!("matsuri_seat_holds_total", "outcome" => "conflict").increment(1);
                return Err(TicketError::SeatUnavailable);
            };
            amount = amount.saturating_add(price);
        }
        let seat_list = serde_json::to_string(seat_ids).map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO reservations (id, event_id, user_id, status, seat_ids, seat_count, amount, \
             expires_at, access_token, created_at, updated_at) \
             VALUES ($1, $2, $3, 'held', $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(reservation_id)
        .bind(event_id)
        .bind(user)
        .bind(&seat_list)
        .bind(i64::try_from(seat_ids.len()).unwrap_or(i64::MAX))
        .bind(amount)
        .bind(expires_at)
        .bind(token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(amount)
    }

    /// One of the user's reservations; another user's answers as missing.
    pub(crate) async fn reservation_row(
        &self,
        user: &str,
        id: &str,
    ) -> Result<ReservationRow, TicketError> {
        sqlx::query_as::<_, ReservationTuple>(sqlx::AssertSqlSafe(format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user)
        .fetch_optional(self.db.reader())
        .await?
        .map(ReservationRow::from)
        .ok_or(TicketError::ReservationNotFound)
    }

    pub async fn reservation(&self, user: &str, id: &str) -> Result<Reservation, TicketError> {
        let row = self.reservation_row(user, id).await?;
        Ok(row.to_reservation(self.clock.now_ms()))
    }

    /// Cancels a hold and releases its seats. Cancelling one that has already ended
    /// changes nothing; a paid one cannot be cancelled.
    pub async fn cancel_reservation(&self, user: &str, id: &str) -> Result<(), TicketError> {
        let row = self.reservation_row(user, id).await?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let cancelled = sqlx::query(
            "UPDATE reservations SET status = 'cancelled', updated_at = $2 \
             WHERE id = $1 AND status = 'held' AND charging_since IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cancelled == 0 {
            tx.rollback().await?;
            return match row.status.as_str() {
                "paid" => Err(TicketError::AlreadyPaid),
                "held" if row.charging_since.is_some() => Err(TicketError::PaymentInProgress),
                _ => Ok(()),
            };
        }
        end_holds(&mut tx, &[(row.id.clone(), row.access_token.clone())], now).await?;
        tx.commit().await?;
        let seats: Vec<String> = serde_json::from_str(&row.seat_ids).unwrap_or_default();
        self.unlock_seats(&row.event_id, &seats, &row.id).await;
        tracing::info!(reservation_id = %id, "hold cancelled");
        Ok(())
    }
}

/// Ends holds (already marked expired or cancelled): their seats still held by them are
/// available again, and their access tokens may hold again. Returns the seats released.
pub(crate) async fn end_holds(
    tx: &mut matsuri_db::Tx,
    holds: &[(String, Option<String>)],
    now: Millis,
) -> Result<u64, sqlx::Error> {
    let mut released = 0;
    for batch in holds.chunks(500) {
        let sql = format!(
            "UPDATE seats SET status = 'available', reservation_id = NULL, held_until = NULL, updated_at = $1 \
             WHERE status = 'held' AND reservation_id IN ({})",
            matsuri_db::parameter_list(2, batch.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for (id, _) in batch {
            query = query.bind(id);
        }
        released += query.execute(&mut **tx).await?.rows_affected();
    }
    let mut per_token: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for token in holds.iter().filter_map(|(_, token)| token.as_deref()) {
        *per_token.entry(token).or_default() += 1;
    }
    for (token, ended) in per_token {
        sqlx::query(
            "UPDATE access_tokens SET live_holds = live_holds - $2 WHERE token = $1 AND live_holds >= $2",
        )
        .bind(token)
        .bind(ended)
        .execute(&mut **tx)
        .await?;
    }
    Ok(released)
}
