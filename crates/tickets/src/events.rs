//! Events and their seats: staff create an event with sections of rows × seats; anyone
//! reads the events and the seat map.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::OnceCell;

use matsuri_core::clock::Millis;
use matsuri_core::extract::integer;
use matsuri_core::timefmt::{parse_rfc3339, rfc3339};
use matsuri_core::{CURRENCY, FieldError};
use matsuri_db::Dialect;

use crate::{Event, Seat, SeatList, SeatStatus, Section, TicketError, TicketService};

/// A section as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SectionRequest {
    /// Unique within the event.
    #[schema(format = "line", max_length = 40)]
    pub name: String,
    #[schema(minimum = 1, maximum = 500)]
    #[serde(deserialize_with = "integer::required")]
    pub rows: i64,
    #[schema(minimum = 1, maximum = 500)]
    #[serde(deserialize_with = "integer::required")]
    pub seats_per_row: i64,
    #[schema(minimum = 0, maximum = 10_000_000)]
    #[serde(deserialize_with = "integer::required")]
    pub price: i64,
}

/// A checked new event.
#[derive(Debug, Clone)]
pub struct NewEvent {
    name: String,
    starts_at: Millis,
    sale_starts_at: Option<Millis>,
    hold_seconds: i64,
    max_active: i64,
    sections: Vec<Section>,
    seat_count: i64,
}

const MAX_SECTIONS: usize = 50;
const MAX_ROWS: i64 = 500;
const MAX_SEATS_PER_ROW: i64 = 500;
const MAX_PRICE: i64 = 10_000_000;
/// Seats written per INSERT statement.
const SEAT_BATCH: usize = 500;

impl NewEvent {
    /// Checks every field; all broken rules are reported at once.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        name: &str,
        starts_at: &str,
        sale_starts_at: Option<&str>,
        hold_seconds: Option<i64>,
        max_active: Option<i64>,
        sections: &[SectionRequest],
        settings: &matsuri_core::config::TicketSettings,
    ) -> Result<Self, TicketError> {
        let mut errors = Vec::new();
        let name = matsuri_core::text::line("name", name, 200)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let starts = parse_rfc3339(starts_at);
        if starts.is_none() {
            errors.push(FieldError::new("starts_at", "must be an RFC 3339 time"));
        }
        let sale = match sale_starts_at {
            None => None,
            Some(text) => match parse_rfc3339(text) {
                Some(at) if starts.is_none_or(|s| at <= s) => Some(at),
                Some(_) => {
                    errors.push(FieldError::new(
                        "sale_starts_at",
                        "must not be after starts_at",
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "sale_starts_at",
                        "must be an RFC 3339 time",
                    ));
                    None
                }
            },
        };
        let hold_seconds = hold_seconds.unwrap_or(settings.default_hold_seconds);
        if !(30..=3_600).contains(&hold_seconds) {
            errors.push(FieldError::new(
                "hold_seconds",
                "must be between 30 and 3600",
            ));
        }
        let max_active = max_active.unwrap_or(settings.default_max_active);
        if !(1..=100_000).contains(&max_active) {
            errors.push(FieldError::new(
                "max_active",
                "must be between 1 and 100000",
            ));
        }
        if sections.is_empty() || sections.len() > MAX_SECTIONS {
            errors.push(FieldError::new(
                "sections",
                format!("must hold 1 to {MAX_SECTIONS} sections"),
            ));
        }
        let mut names = HashSet::new();
        let mut seat_count: i64 = 0;
        let mut checked = Vec::with_capacity(sections.len());
        for (i, s) in sections.iter().enumerate() {
            let field = format!("sections[{i}].name");
            let section_name = match matsuri_core::text::line(&field, &s.name, 40) {
                Ok(name) => name,
                Err(e) => {
                    errors.push(e);
                    String::new()
                }
            };
            if !section_name.is_empty() && !names.insert(section_name.clone()) {
                errors.push(FieldError::new(
                    format!("sections[{i}].name"),
                    "appears more than once",
                ));
            }
            if !(1..=MAX_ROWS).contains(&s.rows) {
                errors.push(FieldError::new(
                    format!("sections[{i}].rows"),
                    format!("must be between 1 and {MAX_ROWS}"),
                ));
            }
            if !(1..=MAX_SEATS_PER_ROW).contains(&s.seats_per_row) {
                errors.push(FieldError::new(
                    format!("sections[{i}].seats_per_row"),
                    format!("must be between 1 and {MAX_SEATS_PER_ROW}"),
                ));
            }
            if !(0..=MAX_PRICE).contains(&s.price) {
                errors.push(FieldError::new(
                    format!("sections[{i}].price"),
                    format!("must be between 0 and {MAX_PRICE}"),
                ));
            }
            seat_count = seat_count.saturating_add(
                s.rows.clamp(0, MAX_ROWS) * s.seats_per_row.clamp(0, MAX_SEATS_PER_ROW),
            );
            checked.push(Section {
                name: section_name,
                rows: s.rows,
                seats_per_row: s.seats_per_row,
                price: s.price,
            });
        }
        if seat_count > settings.max_seats_per_event {
            errors.push(FieldError::new(
                "sections",
                format!(
                    "an event may have at most {} seats",
                    settings.max_seats_per_event
                ),
            ));
        }
        match (errors.is_empty(), starts) {
            (true, Some(starts_at)) => Ok(Self {
                name,
                starts_at,
                sale_starts_at: sale,
                hold_seconds,
                max_active,
                sections: checked,
                seat_count,
            }),
            _ => Err(TicketError::Invalid(errors)),
        }
    }
}

/// Events read so far, by id. Bounded: past `EVENT_CACHE_LIMIT` entries it starts over.
#[derive(Default)]
pub(crate) struct EventCache(Mutex<HashMap<String, Arc<EventRow>>>);

const EVENT_CACHE_LIMIT: usize = 10_000;

impl EventCache {
    fn get(&self, id: &str) -> Option<Arc<EventRow>> {
        self.0.lock().ok()?.get(id).cloned()
    }

    fn insert(&self, row: EventRow) -> Arc<EventRow> {
        let row = Arc::new(row);
        if let Ok(mut events) = self.0.lock() {
            if events.len() >= EVENT_CACHE_LIMIT {
                events.clear();
            }
            events.insert(row.id.clone(), row.clone());
        }
        row
    }
}

/// An event row as stored.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: String,
    pub name: String,
    pub starts_at: i64,
    pub sale_starts_at: Option<i64>,
    pub hold_seconds: i64,
    pub max_active: i64,
    pub seat_count: i64,
    pub sections: String,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for EventRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            starts_at: row.try_get("starts_at")?,
            sale_starts_at: row.try_get("sale_starts_at")?,
            hold_seconds: row.try_get("hold_seconds")?,
            max_active: row.try_get("max_active")?,
            seat_count: row.try_get("seat_count")?,
            sections: row.try_get("sections")?,
        })
    }
}

impl EventRow {
    fn into_event(self) -> Event {
        Event {
            sections: serde_json::from_str(&self.sections).unwrap_or_default(),
            id: self.id,
            name: self.name,
            starts_at: rfc3339(self.starts_at),
            sale_starts_at: self.sale_starts_at.map(rfc3339),
            hold_seconds: self.hold_seconds,
            max_active: self.max_active,
            seat_count: self.seat_count,
            currency: CURRENCY.to_owned(),
        }
    }

    /// Whether the event has a section of that name.
    pub fn has_section(&self, name: &str) -> bool {
        serde_json::from_str::<Vec<Section>>(&self.sections)
            .is_ok_and(|sections| sections.iter().any(|s| s.name == name))
    }

    /// Whether the sale is open at `now`: after its start and before the show.
    pub fn on_sale(&self, now: Millis) -> bool {
        now < self.starts_at && self.sale_starts_at.is_none_or(|at| at <= now)
    }
}

/// A seat row: id, section, row, number, price, status, held until.
type SeatTuple = (String, String, i64, i64, i64, String, Option<i64>);

const EVENT_COLUMNS: &str =
    "id, name, starts_at, sale_starts_at, hold_seconds, max_active, seat_count, sections";

/// The status a seat shows: a hold past its end is as good as released.
fn seat_status(status: &str, held_until: Option<i64>, now: Millis) -> SeatStatus {
    match status {
        "sold" => SeatStatus::Sold,
        "held" if held_until.is_some_and(|until| until > now) => SeatStatus::Held,
        _ => SeatStatus::Available,
    }
}

impl TicketService {
    /// Creates the event and every seat in one transaction.
    pub async fn create_event(&self, new: NewEvent) -> Result<Event, TicketError> {
        let now = self.clock.now_ms();
        let id = matsuri_core::ids::new_uuid_v7();
        let sections = serde_json::to_string(&new.sections).map_err(anyhow::Error::from)?;
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO ticket_events (id, name, starts_at, sale_starts_at, hold_seconds, max_active, \
             seat_count, sections, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(new.starts_at)
        .bind(new.sale_starts_at)
        .bind(new.hold_seconds)
        .bind(new.max_active)
        .bind(new.seat_count)
        .bind(&sections)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut seats = Vec::with_capacity(usize::try_from(new.seat_count).unwrap_or(0));
        for section in &new.sections {
            for row in 1..=section.rows {
                for number in 1..=section.seats_per_row {
                    seats.push((section.name.as_str(), row, number, section.price));
                }
            }
        }
        for (batch_no, batch) in seats.chunks(SEAT_BATCH).enumerate() {
            let values: Vec<String> = (0..batch.len())
                .map(|i| {
                    let p = i * 6;
                    format!(
                        "(${}, $1, ${}, ${}, ${}, ${}, ${}, 'available', $2)",
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO seats (id, event_id, section, row_no, seat_no, position, price, status, updated_at) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&id).bind(now);
            for (i, (section, row, number, price)) in batch.iter().enumerate() {
                let position = i64::try_from(batch_no * SEAT_BATCH + i).unwrap_or(i64::MAX);
                query = query
                    .bind(matsuri_core::ids::new_uuid_v7())
                    .bind(*section)
                    .bind(*row)
                    .bind(*number)
                    .bind(position)
                    .bind(*price);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(event_id = %id, seats = new.seat_count, "event created");
        self.refresh_seat_statistics().await;
        self.event(&id).await
    }

    /// Has PostgreSQL count the seats again once an event's are in. An event goes on sale
    /// soon after it is created, before autovacuum looks at the table; with statistics
    /// that have not seen its seats the planner takes the event for a few dozen rows and
    /// runs the best-available search over every free seat before sorting (50 ms a hold
    /// against 2 ms in position order, measured in a 10,000-seat rush). A failure leaves
    /// the event as created.
    async fn refresh_seat_statistics(&self) {
        if self.db.dialect() != Dialect::Postgres {
            return;
        }
        if let Err(e) = sqlx::query("ANALYZE seats").execute(self.db.writer()).await {
            tracing::warn!(error = %e, "the seat statistics were not refreshed");
        }
    }

    /// The event, from the in-process cache when it was read before: an event never
    /// changes once created, and every queue poll and hold needs it.
    pub(crate) async fn event_row(&self, id: &str) -> Result<Arc<EventRow>, TicketError> {
        if let Some(row) = self.event_cache.get(id) {
            return Ok(row);
        }
        let row = sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?
        .ok_or(TicketError::EventNotFound)?;
        Ok(self.event_cache.insert(row))
    }

    pub async fn event(&self, id: &str) -> Result<Event, TicketError> {
        Ok(self.event_row(id).await?.as_ref().clone().into_event())
    }

    /// Events in creation order, after `cursor` (an event id); `limit + 1` rows.
    pub async fn events_after(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>, TicketError> {
        let rows = self
            .db
            .read_lagging(|pool| async move {
                sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(cursor.unwrap_or(""))
                .bind(i64::from(limit) + 1)
                .fetch_all(&pool)
                .await
            })
            .await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }

    /// Events whose sale is open now (the admission scheduler's work list).
    pub(crate) async fn events_on_sale(&self) -> Result<Vec<EventRow>, TicketError> {
        let now = self.clock.now_ms();
        let rows = sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE starts_at > $1"
        )))
        .bind(now)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().filter(|e| e.on_sale(now)).collect())
    }

    /// The seat map as answered, `{"items": [...]}` in section, row, seat order; only the
    /// seats that can be held now when `only_available`. Under a rush every fan refreshes
    /// it, so one read and one rendering serve every request for `seat_map_max_age_ms`
    /// (requests that come while it is being made wait for it); a hold, not the map,
    /// decides whether a seat is free.
    pub async fn seat_map(
        &self,
        event_id: &str,
        only_available: bool,
    ) -> Result<Bytes, TicketError> {
        self.event_row(event_id).await?;
        let max_age = Duration::from_millis(self.settings.seat_map_max_age_ms);
        if max_age.is_zero() {
            return self.render_seat_map(event_id, only_available).await;
        }
        let rendering = self.seat_maps.current(event_id, only_available, max_age);
        rendering
            .get_or_try_init(|| self.render_seat_map(event_id, only_available))
            .await
            .cloned()
    }

    async fn render_seat_map(
        &self,
        event_id: &str,
        only_available: bool,
    ) -> Result<Bytes, TicketError> {
        let now = self.clock.now_ms();
        // A lapsed hold's seat is free again, though the sweeper has not reset it yet. The
        // replica may be a moment behind: the hold, on the primary, decides.
        let rows = if only_available {
            self.db
                .read_lagging(|pool| async move {
                    sqlx::query_as::<_, SeatTuple>(
                        "SELECT id, section, row_no, seat_no, price, status, held_until FROM seats \
                         WHERE event_id = $1 AND (status = 'available' \
                         OR (status = 'held' AND (held_until IS NULL OR held_until <= $2))) \
                         ORDER BY position",
                    )
                    .bind(event_id)
                    .bind(now)
                    .fetch_all(&pool)
                    .await
                })
                .await?
        } else {
            self.db
                .read_lagging(|pool| async move {
                    sqlx::query_as::<_, SeatTuple>(
                        "SELECT id, section, row_no, seat_no, price, status, held_until FROM seats \
                         WHERE event_id = $1 ORDER BY position",
                    )
                    .bind(event_id)
                    .fetch_all(&pool)
                    .await
                })
                .await?
        };
        let items: Vec<Seat> = rows
            .into_iter()
            .map(
                |(id, section, row, number, price, status, held_until)| Seat {
                    id,
                    section,
                    row,
                    number,
                    price,
                    status: seat_status(&status, held_until, now),
                },
            )
            .collect();
        let body = serde_json::to_vec(&SeatList { items }).map_err(anyhow::Error::from)?;
        Ok(Bytes::from(body))
    }
}

/// A rendering of one seat map (all seats, or the available ones) and when it began.
struct Rendering {
    began: Instant,
    body: Arc<OnceCell<Bytes>>,
}

/// Recent seat map renderings, by event and filter.
#[derive(Default)]
pub(crate) struct SeatMaps(Mutex<HashMap<(String, bool), Rendering>>);

impl SeatMaps {
    /// The rendering begun less than `max_age` ago, or a new empty one that the caller fills.
    fn current(
        &self,
        event_id: &str,
        only_available: bool,
        max_age: Duration,
    ) -> Arc<OnceCell<Bytes>> {
        let Ok(mut maps) = self.0.lock() else {
            return Arc::default();
        };
        let key = (event_id.to_owned(), only_available);
        if let Some(rendering) = maps.get(&key)
            && rendering.began.elapsed() < max_age
        {
            return rendering.body.clone();
        }
        if maps.len() >= EVENT_CACHE_LIMIT {
            maps.clear();
        }
        let body = Arc::<OnceCell<Bytes>>::default();
        maps.insert(
            key,
            Rendering {
                began: Instant::now(),
                body: body.clone(),
            },
        );
        body
    }
}
