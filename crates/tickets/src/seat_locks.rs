//! Seat locks in `coord` (seed 001 §4: `SET LOCK:seat:… NX EX 600` before the database).
//! They are a filter, not the authority: a hold first takes the lock of every seat it
//! wants, and only then goes to the database, whose conditional update decides. So in a
//! stampede the collisions are turned away by `coord` without queueing for the
//! database's writer. A lock records until when it is good; one past that counts as free,
//! and a lost lock (a `coord` restart, an unreachable Redis) only costs a trip to the
//! database. Sold seats stay locked until the show.

use std::time::Duration;

use matsuri_core::clock::Millis;

use crate::TicketService;
use crate::stamp::{live, read, stamp};

fn seat_key(event: &str, seat: &str) -> String {
    format!("tq:{event}:seat:{seat}")
}

const SOLD: &str = "sold";

fn ttl_until(until: Millis, now: Millis) -> Duration {
    Duration::from_millis(u64::try_from(until - now).unwrap_or(0).max(1))
}

impl TicketService {
    /// Takes the lock of every seat for `holder` until `until`. `None` when another
    /// holder has one (and then none are kept); otherwise the locks taken, to give back
    /// if the database refuses. An unreachable `coord` lets the request through.
    pub(crate) async fn lock_seats(
        &self,
        event_id: &str,
        seats: &[String],
        holder: &str,
        until: Millis,
        now: Millis,
    ) -> Option<Vec<String>> {
        let value = stamp(holder, until);
        let ttl = ttl_until(until, now);
        let mut taken = Vec::with_capacity(seats.len());
        for seat in seats {
            let key = seat_key(event_id, seat);
            match self.try_lock(&key, &value, ttl, now).await {
                Ok(true) => taken.push(seat.clone()),
                Ok(false) => {
                    self.unlock_seats(event_id, &taken, holder).await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(
                        error = format!("{e:#}"),
                        "seat locks unavailable; the database decides"
                    );
                    return Some(taken);
                }
            }
        }
        Some(taken)
    }

    async fn try_lock(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: Millis,
    ) -> anyhow::Result<bool> {
        if self.coord.set_nx(key, value, ttl).await? {
            return Ok(true);
        }
        let current = self.coord.get(key).await?;
        if current.as_deref().and_then(|v| live(v, now)).is_some() {
            return Ok(false);
        }
        // A lock past its time (the store's clock and ours disagree): take it over.
        self.coord.del(key).await?;
        self.coord.set_nx(key, value, ttl).await
    }

    /// Gives back `holder`'s locks on these seats, early; best effort, since a lock ends by
    /// itself.
    pub(crate) async fn unlock_seats(&self, event_id: &str, seats: &[String], holder: &str) {
        for seat in seats {
            let key = seat_key(event_id, seat);
            let mine = match self.coord.get(&key).await {
                Ok(value) => value
                    .as_deref()
                    .and_then(read)
                    .is_some_and(|(who, _)| who == holder),
                Err(_) => return,
            };
            if mine && self.coord.del(&key).await.is_err() {
                return;
            }
        }
    }

    /// Locks seats the database has just given `holder` (a best-available hold), over
    /// whatever lock another request took meanwhile: the database has decided.
    pub(crate) async fn lock_seats_held(
        &self,
        event_id: &str,
        seats: &[String],
        holder: &str,
        until: Millis,
        now: Millis,
    ) {
        self.set_locks(
            event_id,
            seats,
            &stamp(holder, until),
            ttl_until(until, now),
        )
        .await;
    }

    /// Marks sold seats locked until the show, so later requests for them stop at `coord`.
    pub(crate) async fn lock_sold_seats(&self, event_id: &str, seats: &[String]) {
        let Ok(event) = self.event_row(event_id).await else {
            return;
        };
        let ttl = ttl_until(event.starts_at, self.clock.now_ms());
        self.set_locks(event_id, seats, &stamp(SOLD, event.starts_at), ttl)
            .await;
    }

    /// Sets the seats' locks to `value`, whoever held them; best effort.
    async fn set_locks(&self, event_id: &str, seats: &[String], value: &str, ttl: Duration) {
        let entries: Vec<(String, String)> = seats
            .iter()
            .map(|seat| (seat_key(event_id, seat), value.to_owned()))
            .collect();
        if let Err(e) = self.coord.set_many(&entries, ttl).await {
            tracing::debug!(
                error = format!("{e:#}"),
                "could not set seat locks in coord"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lifetimes_are_never_zero() {
        assert_eq!(ttl_until(500, 1_000), Duration::from_millis(1));
        assert_eq!(ttl_until(3_000, 1_000), Duration::from_millis(2_000));
    }
}
