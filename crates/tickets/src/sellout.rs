//! Sold out and paused admission (api.md, "Tickets, second round"). Every admission
//! round counts the event's seats on the primary: free (available, or held by a hold
//! that has ended) and held. With none free and none held the event is sold out: a flag
//! in `coord` that every node's join and status answers read, and the queue is emptied.
//! With none free but some held, admission pauses until a hold lapses or is cancelled.
//! What the round counted (the free seats, and while paused the earliest end of a hold)
//! is kept in `coord`, so every node's waiting users are told honest waits: a pause
//! counts until the hold ends, and a user further back than there are seats left is
//! told to ask again when they may be gone.
//!
//! A sold-out event stays sold out: a sold seat is never released. So a node that has
//! seen the flag remembers it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use matsuri_core::clock::Millis;

use crate::events::EventRow;
use crate::{TicketError, TicketService};

fn sold_out_key(event: &str) -> String {
    format!("tq:{event}:soldout")
}
fn seats_key(event: &str) -> String {
    format!("tq:{event}:seats")
}

/// How long a round's count stands unless the next round renews it.
const COUNT_LASTS: Duration = Duration::from_secs(30);

/// An event's seats as one admission round counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Availability {
    /// Available, or held by a hold that has ended.
    pub free: u64,
    /// Held by a hold that has not ended.
    pub held: u64,
    /// When the first of those holds ends.
    pub next_lapse: Option<Millis>,
}

impl Availability {
    /// Whether admission waits: nothing can be bought now.
    pub fn paused(&self) -> bool {
        self.free == 0
    }

    pub fn sold_out(&self) -> bool {
        self.free == 0 && self.held == 0
    }
}

/// What waiting users are told from the last round's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeatsLeft {
    pub free: u64,
    /// While admission is paused: when the first hold that could give a seat back ends.
    pub paused_until: Option<Millis>,
}

impl SeatsLeft {
    fn encode(seats: &Availability) -> String {
        let lapse = if seats.paused() {
            seats.next_lapse
        } else {
            None
        };
        format!("{} {}", seats.free, lapse.unwrap_or(0))
    }

    fn decode(text: &str, now: Millis) -> Option<SeatsLeft> {
        let (free, lapse) = text.split_once(' ')?;
        let lapse: Millis = lapse.parse().ok()?;
        Some(SeatsLeft {
            free: free.parse().ok()?,
            paused_until: (lapse > now).then_some(lapse),
        })
    }
}

/// The events this node has seen sold out.
#[derive(Default)]
pub(crate) struct SoldOutCache(Mutex<HashSet<String>>);

impl SoldOutCache {
    fn known(&self, event_id: &str) -> bool {
        self.0.lock().is_ok_and(|seen| seen.contains(event_id))
    }

    fn note(&self, event_id: &str) {
        let Ok(mut seen) = self.0.lock() else { return };
        if seen.len() >= CACHE_LIMIT {
            seen.clear();
        }
        seen.insert(event_id.to_owned());
    }
}

/// Events a node remembers at once.
const CACHE_LIMIT: usize = 10_000;

impl TicketService {
    /// Counts the event's seats on the primary: a replica behind it could call a held
    /// seat free.
    pub(crate) async fn availability(
        &self,
        event_id: &str,
        now: Millis,
    ) -> Result<Availability, TicketError> {
        let (free, held, next_lapse): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT \
             COALESCE(SUM(CASE WHEN status = 'available' OR (status = 'held' \
               AND (held_until IS NULL OR held_until <= $2)) THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'held' AND held_until > $2 THEN 1 ELSE 0 END), 0), \
             MIN(CASE WHEN status = 'held' AND held_until > $2 THEN held_until END) \
             FROM seats WHERE event_id = $1",
        )
        .bind(event_id)
        .bind(now)
        .fetch_one(self.db.writer())
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Availability {
            free: count(free),
            held: count(held),
            next_lapse,
        })
    }

    /// Whether the event is sold out, as the last admission round of any node found.
    /// An unreachable `coord` answers "not sold out": the hold decides.
    pub(crate) async fn is_sold_out(&self, event_id: &str) -> bool {
        if self.sold_out.known(event_id) {
            return true;
        }
        match self.coord.get(&sold_out_key(event_id)).await {
            Ok(flag) => {
                if flag.is_some() {
                    self.sold_out.note(event_id);
                }
                flag.is_some()
            }
            Err(e) => {
                tracing::debug!(error = format!("{e:#}"), "could not read the sold-out flag");
                false
            }
        }
    }

    /// Records what a round counted: sets the sold-out flag (and empties the queue,
    /// waking every request held for it), or the seats left.
    pub(crate) async fn note_availability(
        &self,
        event: &EventRow,
        seats: &Availability,
        now: Millis,
    ) -> anyhow::Result<()> {
        if seats.sold_out() {
            let until = Duration::from_millis(u64::try_from(event.starts_at - now).unwrap_or(0));
            self.coord
                .set_many(
                    &[(sold_out_key(&event.id), "1".to_owned())],
                    until.max(Duration::from_secs(1)),
                )
                .await?;
            self.coord.del(&crate::queue::queue_key(&event.id)).await?;
            self.sold_out.note(&event.id);
            self.waiters.closed(&event.id);
            tracing::info!(event_id = %event.id, "sold out");
            return Ok(());
        }
        self.coord
            .set_many(
                &[(seats_key(&event.id), SeatsLeft::encode(seats))],
                COUNT_LASTS,
            )
            .await
    }

    /// The seats left as the last round counted them, if one has lately.
    pub(crate) async fn seats_left(&self, event_id: &str, now: Millis) -> Option<SeatsLeft> {
        let text = self.coord.get(&seats_key(event_id)).await.ok()??;
        SeatsLeft::decode(&text, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sold_out_means_none_free_and_none_held() {
        let seats = |free, held| Availability {
            free,
            held,
            next_lapse: None,
        };
        assert!(seats(0, 0).sold_out());
        assert!(!seats(0, 1).sold_out(), "a held seat may come back");
        assert!(seats(0, 1).paused());
        assert!(!seats(1, 0).sold_out());
        assert!(!seats(1, 5).paused());
    }

    #[test]
    fn the_count_left_for_waiting_users_reads_back() {
        let count = |free, held, next_lapse| Availability {
            free,
            held,
            next_lapse,
        };
        let paused = SeatsLeft::encode(&count(0, 3, Some(5_000)));
        assert_eq!(
            SeatsLeft::decode(&paused, 1_000),
            Some(SeatsLeft {
                free: 0,
                paused_until: Some(5_000)
            })
        );
        assert_eq!(
            SeatsLeft::decode(&paused, 6_000).map(|s| s.paused_until),
            Some(None),
            "the hold has ended"
        );
        let open = SeatsLeft::encode(&count(40, 3, Some(5_000)));
        assert_eq!(
            SeatsLeft::decode(&open, 1_000),
            Some(SeatsLeft {
                free: 40,
                paused_until: None
            })
        );
        assert_eq!(SeatsLeft::decode("nonsense", 0), None);
    }

    #[test]
    fn a_sold_out_event_is_remembered() {
        let cache = SoldOutCache::default();
        assert!(!cache.known("e"));
        cache.note("e");
        assert!(cache.known("e"));
        assert!(!cache.known("f"));
    }
}
