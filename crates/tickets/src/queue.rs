//! The waiting room (seed 003 steps 1–3, seed 001 §4): a sorted set per event in the
//! `coord` port. Joining adds the user with their arrival time; before the sale opens
//! each arrival draws a random place instead, so the pre-queue is shuffled once and
//! sits ahead of everyone who comes later. Every `admission_interval` the scheduler
//! admits up to `max_active − active` users in one batch: each gets an access token with
//! a time to live, written to `coord` in one round trip and to the database (the
//! fallback for token checks when `coord` is down). A purchase frees its slot at once,
//! and the next round comes early to hand it on. Waiting clients poll, or have their
//! status request held until they are admitted (`waiting.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::clock::Millis;
use matsuri_core::ids::UserId;
use matsuri_core::timefmt::rfc3339;

use crate::events::EventRow;
use crate::stamp::{live, read, stamp};
use crate::{QueueEntry, QueueState, QueueStatus, TicketError, TicketService};

pub(crate) fn queue_key(event: &str) -> String {
    format!("tq:{event}:queue")
}
fn active_key(event: &str) -> String {
    format!("tq:{event}:active")
}
fn user_key(event: &str, user: &str) -> String {
    format!("tq:{event}:user:{user}")
}
fn token_key(event: &str, token: &str) -> String {
    format!("tq:{event}:token:{token}")
}
fn rate_key(event: &str) -> String {
    format!("tq:{event}:rate")
}
fn admitted_key(event: &str) -> String {
    format!("tq:{event}:admitted")
}
fn lock_key(event: &str) -> String {
    format!("tq:{event}:admitting")
}

/// Signs queue tokens: `(event, user)` under the server's secret, so a token proves its
/// entry without a lookup, and joining twice hands out the same token.
pub(crate) struct QueueKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Serialize, Deserialize)]
struct QueueClaims {
    sub: String,
    evt: String,
    typ: String,
}

const QUEUE_TOKEN_TYPE: &str = "queue";

impl QueueKeys {
    pub(crate) fn new(secret: &[u8]) -> Self {
        // A key of its own, so a sign-in token can never pass for a queue token.
        let mut key = secret.to_vec();
        key.extend_from_slice(b":waiting-room");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    fn issue(&self, event: &str, user: &str) -> Result<String, TicketError> {
        let claims = QueueClaims {
            sub: user.to_owned(),
            evt: event.to_owned(),
            typ: QUEUE_TOKEN_TYPE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TicketError::Internal(anyhow::anyhow!("signing a queue token: {e}")))
    }

    /// The user the token was issued to, if it is a genuine token for `event`.
    fn user_of(&self, token: &str, event: &str) -> Option<String> {
        let data =
            jsonwebtoken::decode::<QueueClaims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.evt == event && data.claims.typ == QUEUE_TOKEN_TYPE).then_some(data.claims.sub)
    }
}

/// What the scheduler of this process knows about admissions: each event's measured
/// rate, and whether a slot has freed since its last round.
#[derive(Default)]
pub(crate) struct Admissions {
    rates: Mutex<HashMap<String, Measured>>,
    /// Signalled when a purchase or a departure frees a slot: the next round comes early.
    freed: tokio::sync::Notify,
}

/// Where the current window of one event's admissions began (when, and the event's
/// admitted total then; no window while admission is paused), and the smoothed rate of
/// the windows before.
struct Measured {
    since: Option<Millis>,
    base: u64,
    rate: Option<f64>,
}

impl Admissions {
    /// Notes a round that admitted `admitted` users at `now`, after which the event's
    /// total (counted in `coord`, so every node's rounds are in it) is `total`. Rounds
    /// come at any pace, so the rate is taken over windows of at least `window` ms:
    /// the new smoothed rate (users per second) when this round closes one, else `None`.
    fn record(
        &self,
        event: &str,
        admitted: u64,
        total: u64,
        now: Millis,
        window: i64,
    ) -> Option<f64> {
        let mut rates = self.rates.lock().ok()?;
        let measured = rates.entry(event.to_owned()).or_insert(Measured {
            since: None,
            base: 0,
            rate: None,
        });
        let Some(since) = measured.since else {
            measured.since = Some(now);
            measured.base = total.saturating_sub(admitted);
            return None;
        };
        let elapsed = now - since;
        if elapsed < window.max(1) {
            return None;
        }
        let sample = total.saturating_sub(measured.base) as f64 * 1000.0 / elapsed as f64;
        let rate = measured
            .rate
            .map_or(sample, |rate| 0.7 * rate + 0.3 * sample);
        *measured = Measured {
            since: Some(now),
            base: total,
            rate: Some(rate),
        };
        Some(rate)
    }

    /// Admission is paused: the time until it resumes is no admission rate, so the
    /// window closes and the next admission opens a new one; the rate before stands.
    fn pause(&self, event: &str) {
        if let Ok(mut rates) = self.rates.lock()
            && let Some(measured) = rates.get_mut(event)
        {
            measured.since = None;
        }
    }
}

fn coord_down(e: anyhow::Error) -> TicketError {
    tracing::warn!(
        error = format!("{e:#}"),
        "the waiting room's store is unreachable"
    );
    TicketError::QueueUnavailable
}

impl TicketService {
    /// Puts the user in the event's queue, or finds their entry. True when the entry is new.
    pub async fn join_queue(
        &self,
        event_id: &str,
        user: &UserId,
    ) -> Result<(QueueEntry, bool), TicketError> {
        let user = user.as_str();
        let event = self.event_row(event_id).await?;
        let now = self.clock.now_ms();
        if now >= event.starts_at {
            return Err(TicketError::SaleClosed);
        }
        let queue_token = self.queue_keys.issue(event_id, user)?;
        let at_once = |state| QueueEntry {
            queue_token: queue_token.clone(),
            state,
            position: 0,
            estimated_wait_seconds: 0,
            poll_after_seconds: poll_after(0),
        };
        if self.is_sold_out(event_id).await {
            return Ok((at_once(QueueState::SoldOut), false));
        }
        if self.admission(event_id, user, now).await?.is_some() {
            return Ok((at_once(QueueState::Active), false));
        }
        let score = match event.sale_starts_at {
            Some(opens) if now < opens => rand::rng().random_range(0..opens.max(1)),
            _ => now,
        };
        let added = self
            .coord
            .zadd_nx(&queue_key(event_id), user, score)
            .await
            .map_err(coord_down)?;
        let place = self.place_of(&event, user, now).await?;
        Ok((
            QueueEntry {
                queue_token,
                state: QueueState::Waiting,
                position: place.and_then(|p| p.position).unwrap_or(0),
                estimated_wait_seconds: place.map_or(0, |p| p.wait),
                poll_after_seconds: place.map_or(poll_after(0), |p| p.poll_after),
            },
            added,
        ))
    }

    /// The user's access token for the event and when it ends, while it lasts.
    pub(crate) async fn admission(
        &self,
        event_id: &str,
        user: &str,
        now: Millis,
    ) -> Result<Option<(String, Millis)>, TicketError> {
        let admitted = self
            .coord
            .get(&user_key(event_id, user))
            .await
            .map_err(coord_down)?;
        Ok(admitted
            .as_deref()
            .and_then(|v| live(v, now))
            .map(|(token, until)| (token.to_owned(), until)))
    }

    /// Where the user stands, `None` when not in the queue.
    async fn place_of(
        &self,
        event: &EventRow,
        user: &str,
        now: Millis,
    ) -> Result<Option<Place>, TicketError> {
        let rank = self
            .coord
            .zrank(&queue_key(&event.id), user)
            .await
            .map_err(coord_down)?;
        let Some(rank) = rank else {
            return Ok(None);
        };
        let ahead = rank + 1;
        let rate = self.admission_rate(event).await;
        let left = self.seats_left(&event.id, now).await;
        // While admission is paused, nobody moves before a hold ends.
        let paused = match left.and_then(|left| left.paused_until) {
            Some(lapse) => u64::try_from((lapse - now).div_euclid(1000)).unwrap_or(0) + 1,
            None => 0,
        };
        let wait_after_opening = paused + (ahead as f64 / rate).ceil() as u64;
        Ok(Some(match event.sale_starts_at {
            Some(opens) if now < opens => {
                let until_open = u64::try_from((opens - now).div_euclid(1000)).unwrap_or(0);
                let wait = until_open + wait_after_opening;
                Place {
                    position: None,
                    wait,
                    poll_after: poll_after(wait),
                }
            }
            _ => {
                // Further back than there are seats left, and admission going on: the
                // seats may be gone before the user's turn, so ask again about then.
                let beyond = left.filter(|left| paused == 0 && ahead > left.free);
                let poll = match beyond {
                    Some(left) => {
                        let gone_in = (left.free as f64 / rate).ceil() as u64;
                        poll_after(wait_after_opening).min(gone_in.max(1))
                    }
                    None => poll_after(wait_after_opening),
                };
                Place {
                    position: Some(ahead),
                    wait: wait_after_opening,
                    poll_after: poll,
                }
            }
        }))
    }

    /// Users admitted per second: as the scheduler measured it, or, until it has, a full
    /// batch of `max_active` per admission interval.
    async fn admission_rate(&self, event: &EventRow) -> f64 {
        let measured = self
            .coord
            .get(&rate_key(&event.id))
            .await
            .ok()
            .flatten()
            .and_then(|text| text.parse::<f64>().ok());
        let interval_seconds = self.settings.admission_interval_ms.max(1) as f64 / 1000.0;
        let full_batches = event.max_active as f64 / interval_seconds;
        measured.unwrap_or(full_batches).max(0.1)
    }

    /// The state of a queue token's entry: waiting (with position), active (with the
    /// access token), expired (admitted and since expired or used, or never queued), or
    /// sold out (and then the user is out of the queue).
    pub async fn queue_status(
        &self,
        event_id: &str,
        queue_token: &str,
    ) -> Result<QueueStatus, TicketError> {
        let user = self.queue_user(event_id, queue_token)?;
        let event = self.event_row(event_id).await?;
        if self.is_sold_out(event_id).await {
            self.leave(event_id, &user).await?;
            return Ok(QueueStatus {
                state: QueueState::SoldOut,
                position: None,
                estimated_wait_seconds: None,
                poll_after_seconds: None,
                access_token: None,
                access_expires_at: None,
            });
        }
        let now = self.clock.now_ms();
        if let Some((token, expires_at)) = self.admission(event_id, &user, now).await? {
            return Ok(QueueStatus {
                state: QueueState::Active,
                position: None,
                estimated_wait_seconds: None,
                poll_after_seconds: None,
                access_token: Some(token),
                access_expires_at: Some(rfc3339(expires_at)),
            });
        }
        let place = self.place_of(&event, &user, now).await?;
        Ok(QueueStatus {
            state: if place.is_some() {
                QueueState::Waiting
            } else {
                QueueState::Expired
            },
            position: place.and_then(|p| p.position),
            estimated_wait_seconds: place.map(|p| p.wait),
            poll_after_seconds: place.map(|p| p.poll_after),
            access_token: None,
            access_expires_at: None,
        })
    }

    /// The user a queue token for the event was issued to.
    pub(crate) fn queue_user(
        &self,
        event_id: &str,
        queue_token: &str,
    ) -> Result<String, TicketError> {
        self.queue_keys
            .user_of(queue_token, event_id)
            .ok_or(TicketError::QueueTokenInvalid)
    }

    /// Admits the next batch of the event's queue: up to `max_active − active` users get
    /// an access token. Returns how many were admitted. Only one node admits an event at
    /// a time.
    pub async fn admit_next_batch(&self, event_id: &str) -> Result<usize, TicketError> {
        let event = self.event_row(event_id).await?;
        self.admit(&event).await
    }

    async fn admit(&self, event: &EventRow) -> Result<usize, TicketError> {
        let now = self.clock.now_ms();
        if !event.on_sale(now) {
            return Ok(0);
        }
        let coord = &self.coord;
        let lock = lock_key(&event.id);
        if !coord
            .set_nx(&lock, "1", Duration::from_secs(10))
            .await
            .map_err(coord_down)?
        {
            return Ok(0);
        }
        let result = self.admit_locked(event, now).await;
        if let Err(e) = coord.del(&lock).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release the admission lock"
            );
        }
        result
    }

    async fn admit_locked(&self, event: &EventRow, now: Millis) -> Result<usize, TicketError> {
        let coord = &self.coord;
        let seats = self.availability(&event.id, now).await?;
        self.note_availability(event, &seats, now)
            .await
            .map_err(coord_down)?;
        if seats.paused() {
            self.admissions.pause(&event.id);
            return Ok(0);
        }
        let active_set = active_key(&event.id);
        coord
            .zrem_up_to(&active_set, now)
            .await
            .map_err(coord_down)?;
        let active = coord.zcard(&active_set).await.map_err(coord_down)?;
        let free = usize::try_from(event.max_active)
            .unwrap_or(0)
            .saturating_sub(usize::try_from(active).unwrap_or(usize::MAX));
        let users = coord
            .zrange_head(&queue_key(&event.id), free)
            .await
            .map_err(coord_down)?;
        let waiting = coord
            .zcard(&queue_key(&event.id))
            .await
            .map_err(coord_down)?;
        let admitted_now = users.len() as u64;
        metrics::gauge!("matsuri_queue_waiting", "event_id" => event.id.clone())
            .set(waiting.saturating_sub(admitted_now) as f64);
        metrics::gauge!("matsuri_queue_active", "event_id" => event.id.clone())
            .set((active + admitted_now) as f64);
        if users.is_empty() {
            return Ok(0);
        }
        let ttl = Duration::from_secs(self.settings.access_token_ttl_seconds.max(1));
        let expires_at = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let tokens: Vec<(String, String)> = users
            .iter()
            .map(|user| (user.clone(), matsuri_core::ids::new_uuid_v7()))
            .collect();
        // The database first: a token that only coord knew would not survive its outage.
        self.persist_access_tokens(&event.id, &tokens, expires_at, now)
            .await?;
        let mut entries = Vec::with_capacity(tokens.len() * 2);
        for (user, token) in &tokens {
            entries.push((user_key(&event.id, user), stamp(token, expires_at)));
            entries.push((token_key(&event.id, token), stamp(user, expires_at)));
        }
        coord.set_many(&entries, ttl).await.map_err(coord_down)?;
        let slots: Vec<(String, i64)> = tokens
            .iter()
            .map(|(_, token)| (token.clone(), expires_at))
            .collect();
        coord
            .zadd_many(&active_set, &slots)
            .await
            .map_err(coord_down)?;
        coord
            .zrem_many(&queue_key(&event.id), &users)
            .await
            .map_err(coord_down)?;
        let admitted = users.len() as u64;
        let total = coord
            .incr_by(
                &admitted_key(&event.id),
                i64::try_from(admitted).unwrap_or(i64::MAX),
            )
            .await
            .map_err(coord_down)?;
        let window = i64::try_from(self.settings.admission_interval_ms).unwrap_or(i64::MAX);
        let total = u64::try_from(total).unwrap_or(0);
        if let Some(rate) = self
            .admissions
            .record(&event.id, admitted, total, now, window)
        {
            coord
                .set_many(
                    &[(rate_key(&event.id), format!("{rate:.3}"))],
                    Duration::from_secs(3_600),
                )
                .await
                .map_err(coord_down)?;
        }
        self.waiters.admitted(&event.id, &users);
        metrics::counter!("matsuri_queue_admitted_total").increment(users.len() as u64);
        tracing::debug!(event_id = %event.id, admitted = users.len(), "admitted a batch");
        Ok(users.len())
    }

    async fn persist_access_tokens(
        &self,
        event_id: &str,
        tokens: &[(String, String)],
        expires_at: Millis,
        now: Millis,
    ) -> Result<(), TicketError> {
        let mut tx = self.db.begin().await?;
        for batch in tokens.chunks(500) {
            let values: Vec<String> = (0..batch.len())
                .map(|i| format!("(${}, $1, ${}, $2, $3)", 4 + 2 * i, 5 + 2 * i))
                .collect();
            let sql = format!(
                "INSERT INTO access_tokens (token, event_id, user_id, expires_at, created_at) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(event_id)
                .bind(expires_at)
                .bind(now);
            for (user, token) in batch {
                query = query.bind(token).bind(user);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks the access token a ticket call carries: `coord` first; when it is
    /// unreachable, the database (seed 003's fallback). A user still in the queue gets
    /// `not_admitted`, anyone else with a missing, unknown or expired token
    /// `access_token_invalid`.
    pub async fn check_access(
        &self,
        event_id: &str,
        user: &str,
        token: Option<&str>,
    ) -> Result<String, TicketError> {
        if let Some(token) = token {
            let now = self.clock.now_ms();
            let owner = match self.coord.get(&token_key(event_id, token)).await {
                // The stored expiry, not only the store's own TTL, decides: every node
                // then agrees on the injected clock.
                Ok(entry) => entry
                    .as_deref()
                    .and_then(|v| live(v, now))
                    .map(|(owner, _)| owner.to_owned()),
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "coord unreachable: checking the access token in the database"
                    );
                    metrics::counter!("matsuri_access_token_fallback_total").increment(1);
                    self.access_owner_in_db(event_id, token).await?
                }
            };
            if owner.as_deref() == Some(user) {
                return Ok(token.to_owned());
            }
        }
        match self.coord.zrank(&queue_key(event_id), user).await {
            Ok(Some(_)) => Err(TicketError::NotAdmitted),
            _ => Err(TicketError::AccessTokenInvalid),
        }
    }

    async fn access_owner_in_db(
        &self,
        event_id: &str,
        token: &str,
    ) -> Result<Option<String>, TicketError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM access_tokens WHERE token = $1 AND event_id = $2 \
             AND released_at IS NULL AND expires_at > $3",
        )
        .bind(token)
        .bind(event_id)
        .bind(self.clock.now_ms())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Frees a purchase's slot in `coord` for the next in line (the database copy was
    /// released in the purchase's transaction). A failure here only delays the slot
    /// until the token's time to live ends.
    pub(crate) async fn free_slot(&self, event_id: &str, user: &str, token: &str) {
        let coord = &self.coord;
        let result = async {
            coord.del(&token_key(event_id, token)).await?;
            coord.del(&user_key(event_id, user)).await?;
            coord.zrem(&active_key(event_id), token).await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => self.admissions.freed.notify_one(),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not free an access slot"),
        }
    }

    /// Takes the user out of the event's waiting room: out of the queue, or, when
    /// admitted, their access token ends and the slot goes to the next in line. Holds
    /// already made stay until paid, cancelled or ended.
    pub async fn leave_queue(&self, event_id: &str, user: &UserId) -> Result<(), TicketError> {
        self.leave(event_id, user.as_str()).await
    }

    async fn leave(&self, event_id: &str, user: &str) -> Result<(), TicketError> {
        self.event_row(event_id).await?;
        self.coord
            .zrem(&queue_key(event_id), user)
            .await
            .map_err(coord_down)?;
        let admitted = self
            .coord
            .get(&user_key(event_id, user))
            .await
            .map_err(coord_down)?;
        if let Some((token, _)) = admitted.as_deref().and_then(read) {
            sqlx::query(
                "UPDATE access_tokens SET released_at = $2 WHERE token = $1 AND released_at IS NULL",
            )
            .bind(token)
            .bind(self.clock.now_ms())
            .execute(self.db.writer())
            .await?;
            self.free_slot(event_id, user, token).await;
        }
        Ok(())
    }

    /// The admission scheduler: every `admission_interval`, admits the next batch of
    /// every event on sale. A slot freed here brings the next round forward, but rounds
    /// come at most every `EARLY_ROUND_GAP`.
    pub async fn run_admissions(self: Arc<Self>, stop: CancellationToken) {
        let interval = Duration::from_millis(self.settings.admission_interval_ms.max(10));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
                () = self.admissions.freed.notified() => {
                    tokio::time::sleep(EARLY_ROUND_GAP.min(interval)).await;
                    tick.reset();
                }
            }
            let round = async {
                for event in self.events_on_sale().await? {
                    if let Err(e) = self.admit(&event).await {
                        tracing::warn!(event_id = %event.id, error = %e, "admission failed");
                    }
                }
                Ok::<_, TicketError>(())
            };
            if let Err(e) = round.instrument(tracing::info_span!("admission")).await {
                tracing::warn!(error = %e, "the admission round failed");
            }
        }
    }
}

/// A waiting user's place: 1-based position (hidden before the sale opens), the
/// estimated wait, and when to ask again.
#[derive(Debug, Clone, Copy)]
struct Place {
    position: Option<u64>,
    wait: u64,
    poll_after: u64,
}

/// The shortest time between admission rounds brought forward by freed slots: the
/// slots a burst of purchases frees go out together, one database write for them all.
const EARLY_ROUND_GAP: Duration = Duration::from_millis(100);

/// When a waiting client should ask again: a quarter of its estimated wait, 1 to 15 s.
fn poll_after(estimated_wait_seconds: u64) -> u64 {
    estimated_wait_seconds.div_ceil(4).clamp(1, 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_tokens_name_their_event_and_user() {
        let keys = QueueKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.issue("event-1", "user-1").unwrap_or_default();
        assert_eq!(keys.user_of(&token, "event-1").as_deref(), Some("user-1"));
        assert_eq!(keys.user_of(&token, "event-2"), None);
        assert_eq!(keys.issue("event-1", "user-1").ok(), Some(token));
        let other = QueueKeys::new(b"another-secret-another-secret-xx");
        let forged = other.issue("event-1", "user-1").unwrap_or_default();
        assert_eq!(keys.user_of(&forged, "event-1"), None);
    }

    #[test]
    fn the_admission_rate_is_measured_over_whole_windows() {
        let admissions = Admissions::default();
        let rate = |admitted, total, now| admissions.record("e", admitted, total, now, 1_000);
        assert_eq!(rate(500, 500, 0), None);
        assert_eq!(rate(100, 600, 400), None);
        // 500 + 100 + 200 users in 2 s, however many rounds brought them.
        assert_eq!(rate(200, 800, 2_000), Some(400.0));
        // Then 100 over the next second, 50 of them admitted by another node: smoothed
        // into the 400 before.
        let smoothed = rate(50, 900, 3_000).unwrap_or_default();
        assert!((smoothed - 310.0).abs() < 1e-9, "{smoothed}");
        assert_eq!(admissions.record("other", 7, 7, 3_000, 1_000), None);
    }

    #[test]
    fn waiting_clients_poll_less_the_longer_they_wait() {
        assert_eq!(poll_after(0), 1);
        assert_eq!(poll_after(10), 3);
        assert_eq!(poll_after(3_600), 15);
    }
}
