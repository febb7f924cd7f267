//! Long-polled queue status. A waiting client that sends `Prefer: wait=N` (RFC 7240) is
//! answered as soon as it is admitted, or after `N` seconds with its place, rather than
//! asking again and again and noticing its admission only at its next poll.
//!
//! Holding a request costs a connection, so a process holds at most
//! `max_held_queue_requests` at once, and only for users likely to be admitted within
//! the wait (the estimated wait is no longer than it): the ones a quick answer helps.
//! Everyone else is answered at once and told when to ask again.
//!
//! A held request looks again after every admission round of its own process, which
//! wakes it, and at least once a second, for rounds run by another node.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::{QueueState, QueueStatus, TicketError, TicketService};

/// How often a held request looks for an admission that woke nobody here.
const RECHECK: Duration = Duration::from_secs(1);

/// The requests this process holds, and what wakes them.
pub(crate) struct Waiters {
    /// Counts this process's admission rounds that admitted someone.
    rounds: watch::Sender<u64>,
    /// One permit per held request.
    permits: Arc<Semaphore>,
    /// Cancelled on shutdown: every held request is answered at once.
    closing: CancellationToken,
}

impl Waiters {
    pub(crate) fn new(most: usize) -> Self {
        Self {
            rounds: watch::Sender::new(0),
            permits: Arc::new(Semaphore::new(most.min(Semaphore::MAX_PERMITS))),
            closing: CancellationToken::new(),
        }
    }

    /// Wakes every held request to look at its entry again.
    pub(crate) fn admitted_some(&self) {
        self.rounds.send_modify(|round| *round += 1);
    }
}

/// A held request's permit; counted in `matsuri_queue_held_requests` while it lasts.
struct Held {
    _permit: OwnedSemaphorePermit,
}

impl Held {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!("matsuri_queue_held_requests").increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics::gauge!("matsuri_queue_held_requests").decrement(1.0);
    }
}

impl TicketService {
    /// The queue token's state, as `queue_status` gives it, but a waiting entry likely to
    /// be admitted within `wait` (capped at `max_queue_wait_seconds`) is answered only
    /// once it is admitted or the wait is over; then `poll_after_seconds` is 0, as the
    /// client may ask again at once. True when the request was held.
    pub async fn await_queue_status(
        &self,
        event_id: &str,
        queue_token: &str,
        wait: Duration,
    ) -> Result<(QueueStatus, bool), TicketError> {
        // Listening before looking: a round between the two still wakes this request.
        let mut rounds = self.waiters.rounds.subscribe();
        let status = self.queue_status(event_id, queue_token).await?;
        let wait = wait.min(Duration::from_secs(self.settings.max_queue_wait_seconds));
        let soon = status
            .estimated_wait_seconds
            .is_some_and(|seconds| seconds <= wait.as_secs());
        if status.state != QueueState::Waiting || !soon || self.waiters.closing.is_cancelled() {
            return Ok((status, false));
        }
        let Ok(permit) = self.waiters.permits.clone().try_acquire_owned() else {
            return Ok((status, false));
        };
        let held = Held::new(permit);
        let user = self.queue_user(event_id, queue_token)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                () = self.waiters.closing.cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                _ = rounds.changed() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
            let now = self.clock.now_ms();
            if self.admission(event_id, &user, now).await?.is_some() {
                break;
            }
        }
        drop(held);
        let mut status = self.queue_status(event_id, queue_token).await?;
        if status.state == QueueState::Waiting {
            status.poll_after_seconds = Some(0);
        }
        Ok((status, true))
    }

    /// Answers every held queue status request now and holds no more: the server is
    /// shutting down.
    pub fn stop_waiting(&self) {
        self.waiters.closing.cancel();
    }
}
