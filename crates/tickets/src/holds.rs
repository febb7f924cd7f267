//! Seat holds (seed 001 §4 "seat lock", seed 003 step 4): every requested seat or none,
//! taken by a conditional `UPDATE` whose condition is "available, or held by a hold
//! that has ended". Holds are made by one task (a few on PostgreSQL), a batch per
//! transaction: one `UPDATE` takes the seats of every hold in the batch, and a hold
//! that did not get all of its seats gives back the ones it got in the same
//! transaction. A hold lasts the event's `hold_seconds`.
//!
//! A hold may also ask for the best `quantity` seats (of a section): the batch's
//! transaction takes them with one conditional statement each (`best.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};

use matsuri_core::clock::Millis;
use matsuri_core::ids::{UserId, parse_uuid};
use matsuri_core::timefmt::rfc3339;
use matsuri_core::{CURRENCY, FieldError, SharedClock, Yen};
use matsuri_db::{Conn, Db, batches};

use crate::best::{Block, pick_alone, take_block};
use crate::seat_feed::{SeatChange, SeatFeed, by_event};
use crate::{Reservation, ReservationStatus, SeatStatus, TicketError, TicketService};

/// Leave to hold seats of one event, from [`TicketService::admit_hold`].
#[derive(Debug)]
pub struct HoldPass {
    event_id: String,
    user: String,
    token: String,
    hold_seconds: i64,
}

/// A reservation row as stored.
#[derive(Debug, Clone)]
pub(crate) struct ReservationRow {
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    pub status: String,
    pub seat_ids: String,
    pub seat_count: i64,
    pub amount: Yen,
    pub expires_at: i64,
    pub access_token: Option<String>,
    pub charging_since: Option<i64>,
    pub charge_key: Option<String>,
}

pub(crate) const RESERVATION_COLUMNS: &str = "id, event_id, user_id, status, seat_ids, seat_count, amount, expires_at, \
     access_token, charging_since, charge_key";

impl<'r> sqlx::FromRow<'r, AnyRow> for ReservationRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            user_id: row.try_get("user_id")?,
            status: row.try_get("status")?,
            seat_ids: row.try_get("seat_ids")?,
            seat_count: row.try_get("seat_count")?,
            amount: Yen(row.try_get("amount")?),
            expires_at: row.try_get("expires_at")?,
            access_token: row.try_get("access_token")?,
            charging_since: row.try_get("charging_since")?,
            charge_key: row.try_get("charge_key")?,
        })
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
            amount: self.amount.0,
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

    /// Checks a best-available request: 1 to `max_seats_per_hold` seats, of a section
    /// the event has when one is named.
    pub async fn parse_best(
        &self,
        event_id: &str,
        quantity: i64,
        section: Option<String>,
    ) -> Result<(usize, Option<String>), TicketError> {
        let max = self.settings.max_seats_per_hold;
        let quantity = usize::try_from(quantity)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| TicketError::invalid("quantity", format!("must be 1 to {max}")))?;
        if let Some(section) = &section {
            let event = self.event_row(event_id).await?;
            if !event.has_section(section) {
                return Err(TicketError::invalid(
                    "section",
                    "is not a section of this event",
                ));
            }
        }
        Ok((quantity, section))
    }

    /// Whether `user` may hold seats of the event now: the event is on sale and the access
    /// token is theirs. Decided before the request's seats are read, so a caller who may
    /// not hold learns nothing about what a valid request would be.
    pub async fn admit_hold(
        &self,
        event_id: &str,
        user: &UserId,
        access_token: Option<&str>,
    ) -> Result<HoldPass, TicketError> {
        let user = user.as_str();
        let event = self.event_row(event_id).await?;
        if !event.on_sale(self.clock.now_ms()) {
            return Err(TicketError::SaleClosed);
        }
        let token = self.check_access(event_id, user, access_token).await?;
        Ok(HoldPass {
            event_id: event_id.to_owned(),
            user: user.to_owned(),
            token,
            hold_seconds: event.hold_seconds,
        })
    }

    /// Holds every seat in `seat_ids` (from [`TicketService::parse_seat_ids`]) for the
    /// holder of `pass`, or none: 409 `seat_unavailable` when any is taken or unknown.
    pub async fn hold_seats(
        &self,
        pass: HoldPass,
        seat_ids: Vec<String>,
    ) -> Result<Reservation, TicketError> {
        self.hold(pass, Want::Seats(seat_ids)).await
    }

    /// Holds the best `quantity` seats side by side (from [`TicketService::parse_best`]):
    /// the first such block in event order (sections, then rows, then seats), of
    /// `section` if named; 409 `seat_unavailable` when there is none.
    pub async fn hold_best(
        &self,
        pass: HoldPass,
        quantity: usize,
        section: Option<String>,
    ) -> Result<Reservation, TicketError> {
        self.hold(pass, Want::Best { quantity, section }).await
    }

    async fn hold(&self, pass: HoldPass, want: Want) -> Result<Reservation, TicketError> {
        let HoldPass {
            event_id,
            user,
            token,
            hold_seconds,
        } = pass;
        let (event_id, user) = (event_id.as_str(), user.as_str());
        let now = self.clock.now_ms();
        let reservation_id = matsuri_core::ids::new_uuid_v7();
        let expires_at = now + hold_seconds * 1000;
        let locked = match &want {
            Want::Seats(seat_ids) => {
                self.lock_seats(event_id, seat_ids, &reservation_id, expires_at, now)
                    .await
            }
            Want::Best { .. } => Some(Vec::new()),
        };
        let Some(locked) = locked else {
            metrics::counter!("matsuri_seat_holds_total", "outcome" => "conflict").increment(1);
            return Err(TicketError::SeatUnavailable);
        };
        let best = matches!(want, Want::Best { .. });
        let held = batches::submit(&self.holds, "hold writer", |done| PendingHold {
            event_id: event_id.to_owned(),
            user: user.to_owned(),
            token,
            reservation_id: reservation_id.clone(),
            want,
            expires_at,
            done,
        })
        .await
        .map_err(TicketError::from)
        .and_then(|held| held);
        if held.is_err() {
            self.unlock_seats(event_id, &locked, &reservation_id).await;
        }
        if let Err(TicketError::SeatUnavailable) = held {
            metrics::counter!("matsuri_seat_holds_total", "outcome" => "conflict").increment(1);
        }
        let Held { amount, seat_ids } = held?;
        if best {
            // Picked by the database: the locks tell later requests for these seats.
            self.lock_seats_held(event_id, &seat_ids, &reservation_id, expires_at, now)
                .await;
        }
        metrics::counter!("matsuri_seat_holds_total", "outcome" => "held").increment(1);
        tracing::info!(event_id, reservation_id = %reservation_id, seats = seat_ids.len(), "seats held");
        Ok(Reservation {
            reservation_id,
            event_id: event_id.to_owned(),
            status: ReservationStatus::Held,
            seat_ids,
            amount: amount.0,
            currency: CURRENCY.to_owned(),
            expires_at: rfc3339(expires_at),
        })
    }

    /// One of the user's reservations; another user's answers as missing.
    pub(crate) async fn reservation_row(
        &self,
        user: &str,
        id: &str,
    ) -> Result<ReservationRow, TicketError> {
        sqlx::query_as::<_, ReservationRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user)
        .fetch_optional(self.db.reader())
        .await?
        .ok_or(TicketError::ReservationNotFound)
    }

    pub async fn reservation(&self, user: &UserId, id: &str) -> Result<Reservation, TicketError> {
        let row = self.reservation_row(user.as_str(), id).await?;
        Ok(row.to_reservation(self.clock.now_ms()))
    }

    /// Cancels a hold and releases its seats. Cancelling one that has already ended
    /// changes nothing; a paid one cannot be cancelled.
    pub async fn cancel_reservation(&self, user: &UserId, id: &str) -> Result<(), TicketError> {
        let row = self.reservation_row(user.as_str(), id).await?;
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
        let released =
            end_holds(&mut tx, &[(row.id.clone(), row.access_token.clone())], now).await?;
        tx.commit().await?;
        self.note_seats(released, SeatStatus::Available);
        let seats: Vec<String> = serde_json::from_str(&row.seat_ids).unwrap_or_default();
        self.unlock_seats(&row.event_id, &seats, &row.id).await;
        tracing::info!(reservation_id = %id, "hold cancelled");
        Ok(())
    }

    /// Tells the seat map of committed changes (`event_id, seat_id, version` rows).
    pub(crate) fn note_seats(&self, rows: Vec<(String, String, i64)>, status: SeatStatus) {
        for (event_id, changes) in by_event(rows, status) {
            self.seat_feed.note(&event_id, changes);
        }
    }
}

/// Makes the seats the reservations still hold available again; returns them as
/// `event_id, seat_id, version`. Every way seats are let go comes here: a hold cancelled
/// or lapsed, a batch's hold short of a seat, a best-available block given up.
pub(crate) async fn release_seats(
    conn: &mut Conn,
    reservation_ids: &[&str],
    now: Millis,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let mut released = Vec::new();
    for chunk in reservation_ids.chunks(500) {
        let sql = format!(
            "UPDATE seats SET status = 'available', reservation_id = NULL, held_until = NULL, \
             updated_at = $1, version = version + 1 \
             WHERE status = 'held' AND reservation_id IN ({}) RETURNING event_id, id, version",
            matsuri_db::parameter_list(2, chunk.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        released.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(released)
}

/// Ends holds (already marked expired or cancelled): their seats still held by them are
/// available again, and their access tokens may hold again. Returns the seats released,
/// as `event_id, seat_id, version`.
pub(crate) async fn end_holds(
    tx: &mut matsuri_db::Tx,
    holds: &[(String, Option<String>)],
    now: Millis,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let ids: Vec<&str> = holds.iter().map(|(id, _)| id.as_str()).collect();
    let released = release_seats(tx, &ids, now).await?;
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

/// The seats a hold asks for.
#[derive(Debug)]
enum Want {
    /// These, checked and sorted.
    Seats(Vec<String>),
    /// The best block of `quantity` side by side, of `section` if named.
    Best {
        quantity: usize,
        section: Option<String>,
    },
}

impl Want {
    fn seats(&self) -> &[String] {
        match self {
            Self::Seats(ids) => ids,
            Self::Best { .. } => &[],
        }
    }
}

/// What a hold got: its amount and its seats, in seat id order.
#[derive(Debug)]
pub(crate) struct Held {
    amount: Yen,
    seat_ids: Vec<String>,
}

/// A hold on its way to the writer, and who waits for what it got or why it failed.
pub(crate) struct PendingHold {
    event_id: String,
    user: String,
    token: String,
    reservation_id: String,
    want: Want,
    expires_at: Millis,
    done: oneshot::Sender<Result<Held, TicketError>>,
}

/// Holds a batch takes at most (each of up to `max_seats_per_hold` seats).
const HOLDS_PER_BATCH: usize = 100;
/// Starts the tasks that make seat holds, a batch per transaction (see [`write_holds`]);
/// they end when the returned sender drops. Must be called inside a tokio runtime.
pub(crate) fn start_holding(
    db: Db,
    clock: SharedClock,
    feed: Arc<SeatFeed>,
    max_holds_per_admission: i64,
) -> mpsc::Sender<PendingHold> {
    let lanes = batches::lanes_for(&db);
    let picking = Arc::new(tokio::sync::Mutex::new(()));
    batches::start("seat_holds", HOLDS_PER_BATCH, lanes, move |batch| {
        let (db, clock, feed) = (db.clone(), clock.clone(), feed.clone());
        let picking = picking.clone();
        async move {
            let max_holds = max_holds_per_admission.max(1);
            hold_batch(&db, &clock, &feed, &picking, max_holds, batch).await
        }
    })
}

/// Makes one batch of holds and tells each waiter how it went. A hold that shares its
/// access token (each counts against the token's limit) or a seat with one before it in
/// the batch waits for the next batch, where it goes first: so the batch's holds never
/// cross, and the outcome is the one they would have had one after another.
///
/// A batch with best-available holds first takes `picking`, the node's turn to pick
/// blocks, and only then a connection: the event's lock in the database lets one
/// transaction pick at a time, and lanes waiting for it inside the database would each
/// hold a connection of the pool, which the payments and the queue need meanwhile.
async fn hold_batch(
    db: &Db,
    clock: &SharedClock,
    feed: &SeatFeed,
    picking: &tokio::sync::Mutex<()>,
    max_holds: i64,
    batch: Vec<PendingHold>,
) -> Vec<PendingHold> {
    let mut tokens = HashSet::new();
    let mut seats = HashSet::new();
    let (holds, later): (Vec<_>, Vec<_>) = batch.into_iter().partition(|hold| {
        let wanted = hold.want.seats();
        let apart =
            !tokens.contains(&hold.token) && wanted.iter().all(|seat| !seats.contains(seat));
        if apart {
            tokens.insert(hold.token.clone());
            seats.extend(wanted.iter().cloned());
        }
        apart
    });
    let picks = holds
        .iter()
        .any(|hold| matches!(hold.want, Want::Best { .. }));
    let _turn = if picks {
        Some(picking.lock().await)
    } else {
        None
    };
    let outcomes = batches::retrying(
        || write_holds(db, clock.now_ms(), max_holds, &holds),
        batches::is_retryable,
    )
    .await;
    match outcomes {
        Ok((outcomes, changes)) => {
            for (event_id, changes) in changes {
                feed.note(&event_id, changes);
            }
            for (hold, outcome) in holds.into_iter().zip(outcomes) {
                let _ = hold.done.send(outcome);
            }
        }
        Err(e) => {
            let why = format!("{e:#}");
            for hold in holds {
                let _ = hold.done.send(Err(TicketError::Internal(anyhow::anyhow!(
                    "holding seats: {why}"
                ))));
            }
        }
    }
    later
}

/// What a batch's transaction did: each hold's outcome, and the seat map's changes by
/// event.
type Written = (
    Vec<Result<Held, TicketError>>,
    HashMap<String, Vec<SeatChange>>,
);

/// In one transaction, for holds of distinct access tokens and seats: ends the holders'
/// own holds that are over, counts each hold against its token's limit, takes every
/// named seat with one conditional `UPDATE` (available, or held by a hold that has
/// ended), gives back the seats of any hold that did not get all of its own, takes each
/// best-available block, and records the holds that got their seats. Returns each
/// hold's outcome and the changes to tell the seat map once committed.
async fn write_holds(
    db: &Db,
    now: Millis,
    max_holds: i64,
    holds: &[PendingHold],
) -> Result<Written, sqlx::Error> {
    let dialect = db.dialect();
    let mut tx = db.begin().await?;
    let picking: Vec<&str> = holds
        .iter()
        .filter(|hold| matches!(hold.want, Want::Best { .. }))
        .map(|hold| hold.event_id.as_str())
        .collect();
    if !picking.is_empty() {
        pick_alone(&mut tx, dialect, picking).await?;
    }
    let sql = format!(
        "UPDATE reservations SET status = 'expired', updated_at = $1 \
         WHERE status = 'held' AND charging_since IS NULL AND expires_at <= $1 \
         AND access_token IN ({}) RETURNING id, access_token",
        matsuri_db::parameter_list(2, holds.len())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now);
    for hold in holds {
        query = query.bind(hold.token.as_str());
    }
    let ended: Vec<(String, Option<String>)> = query.fetch_all(&mut *tx).await?;
    let mut changes = if ended.is_empty() {
        HashMap::new()
    } else {
        by_event(
            end_holds(&mut tx, &ended, now).await?,
            SeatStatus::Available,
        )
    };

    let sql = format!(
        "UPDATE access_tokens SET live_holds = live_holds + 1 \
         WHERE live_holds < $1 AND token IN ({}) RETURNING token",
        matsuri_db::parameter_list(2, holds.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(max_holds);
    for hold in holds {
        query = query.bind(hold.token.as_str());
    }
    let counted: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();

    // Each seat row: id, reservation, held until, now, event.
    let seats: Vec<(&PendingHold, &String)> = holds
        .iter()
        .filter(|hold| counted.contains(&hold.token))
        .flat_map(|hold| hold.want.seats().iter().map(move |seat| (hold, seat)))
        .collect();
    let mut taken: HashMap<String, Vec<(String, i64, i64)>> = HashMap::new();
    if !seats.is_empty() {
        let sql = format!(
            "UPDATE seats SET status = 'held', reservation_id = v.column2, held_until = v.column3, \
             updated_at = v.column4, version = seats.version + 1 FROM (VALUES {}) AS v \
             WHERE seats.id = v.column1 AND seats.event_id = v.column5 \
             AND (seats.status = 'available' OR (seats.status = 'held' AND seats.held_until <= v.column4)) \
             RETURNING seats.reservation_id, seats.id, seats.price, seats.version",
            matsuri_db::value_rows(dialect, seats.len(), 5)
        );
        let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for (hold, seat) in &seats {
            query = query
                .bind(seat.as_str())
                .bind(hold.reservation_id.as_str())
                .bind(hold.expires_at)
                .bind(now)
                .bind(hold.event_id.as_str());
        }
        let rows = query.fetch_all(&mut *tx).await?;
        for (reservation, seat, price, version) in rows {
            taken
                .entry(reservation)
                .or_default()
                .push((seat, price, version));
        }
    }
    let mut outcomes: Vec<Result<Held, TicketError>> = Vec::with_capacity(holds.len());
    for hold in holds {
        let outcome = if !counted.contains(&hold.token) {
            Err(TicketError::HoldLimitReached)
        } else {
            match &hold.want {
                Want::Seats(ids) => match taken.get(hold.reservation_id.as_str()) {
                    Some(got) if got.len() == ids.len() => Ok(()),
                    _ => Err(TicketError::SeatUnavailable),
                },
                Want::Best { quantity, section } => {
                    let block = Block {
                        event_id: &hold.event_id,
                        quantity: *quantity,
                        section: section.as_deref(),
                        reservation_id: &hold.reservation_id,
                        held_until: hold.expires_at,
                    };
                    let got = take_block(&mut tx, dialect, &block, now).await?;
                    let outcome = if got.is_empty() {
                        Err(TicketError::SeatUnavailable)
                    } else {
                        Ok(())
                    };
                    taken.insert(hold.reservation_id.clone(), got);
                    outcome
                }
            }
        };
        outcomes.push(outcome.map(|()| {
            let got = taken.get(hold.reservation_id.as_str());
            let mut seat_ids: Vec<String> = got
                .map(|got| got.iter().map(|(seat, _, _)| seat.clone()).collect())
                .unwrap_or_default();
            seat_ids.sort();
            // Prices are at most MAX_PRICE and a hold's seats few: the sum cannot overflow.
            let amount = got.map_or(Yen::ZERO, |got| {
                got.iter().fold(Yen::ZERO, |sum, (_, price, _)| {
                    sum.plus(Yen(*price)).unwrap_or(Yen(i64::MAX))
                })
            });
            Held { amount, seat_ids }
        }));
    }
    // A hold short of a seat (taken before, or unknown) gives back what it got and its
    // count.
    let short: Vec<&PendingHold> = holds
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Err(TicketError::SeatUnavailable)))
        .map(|(hold, _)| hold)
        .collect();
    if !short.is_empty() {
        let ids: Vec<&str> = short.iter().map(|h| h.reservation_id.as_str()).collect();
        release_seats(&mut tx, &ids, now).await?;
        let sql = format!(
            "UPDATE access_tokens SET live_holds = live_holds - 1 \
             WHERE live_holds > 0 AND token IN ({})",
            matsuri_db::parameter_list(1, short.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for hold in &short {
            query = query.bind(hold.token.as_str());
        }
        query.execute(&mut *tx).await?;
    }

    let made: Vec<(&PendingHold, &Held)> = holds
        .iter()
        .zip(&outcomes)
        .filter_map(|(hold, outcome)| outcome.as_ref().ok().map(|held| (hold, held)))
        .collect();
    if !made.is_empty() {
        let sql = format!(
            "INSERT INTO reservations (id, event_id, user_id, status, seat_ids, seat_count, amount, \
             expires_at, access_token, created_at, updated_at) VALUES {}",
            matsuri_db::value_rows(dialect, made.len(), 11)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (hold, held) in &made {
            let seat_list = serde_json::to_string(&held.seat_ids)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            query = query
                .bind(hold.reservation_id.as_str())
                .bind(hold.event_id.as_str())
                .bind(hold.user.as_str())
                .bind("held")
                .bind(seat_list)
                .bind(i64::try_from(held.seat_ids.len()).unwrap_or(i64::MAX))
                .bind(held.amount.0)
                .bind(hold.expires_at)
                .bind(hold.token.as_str())
                .bind(now)
                .bind(now);
        }
        query.execute(&mut *tx).await?;
        for (hold, _) in &made {
            let got = taken
                .remove(hold.reservation_id.as_str())
                .unwrap_or_default();
            changes
                .entry(hold.event_id.clone())
                .or_default()
                .extend(got.into_iter().map(|(seat_id, _, version)| SeatChange {
                    seat_id,
                    status: SeatStatus::Held,
                    version,
                }));
        }
    }
    tx.commit().await?;
    Ok((outcomes, changes))
}
