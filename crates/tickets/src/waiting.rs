//! Long-polled queue status. A waiting client that sends `Prefer: wait=N` (RFC 7240) is
//! answered as soon as it is admitted, or after `N` seconds with its place, rather than
//! asking again and again and noticing its admission only at its next poll.
//!
//! Holding a request costs a connection, so a process holds at most
//! `max_held_queue_requests` at once, and only for users likely to be admitted within
//! the wait (the estimated wait is no longer than it): the ones a quick answer helps.
//! Everyone else is answered at once and told when to ask again.
//!
//! An admission round of this process wakes the held requests of the users it admitted,
//! and only those; a held request also looks again once a second, for rounds run by
//! another node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{QueueState, QueueStatus, TicketError, TicketService};

/// How often a held request looks for an admission that woke nobody here.
const RECHECK: Duration = Duration::from_secs(1);

/// The requests this process holds, and what wakes them.
pub(crate) struct Waiters {
    /// The held requests, by event and user.
    held: Mutex<HashMap<(String, String), Listeners>>,
    /// One permit per held request.
    permits: Arc<Semaphore>,
    /// Cancelled on shutdown: every held request is answered at once.
    closing: CancellationToken,
}

impl Waiters {
    pub(crate) fn new(most: usize) -> Self {
        Self {
            held: Mutex::default(),
            permits: Arc::new(Semaphore::new(most.min(Semaphore::MAX_PERMITS))),
            closing: CancellationToken::new(),
        }
    }

    /// Wakes the held requests of `users`, just admitted to the event.
    pub(crate) fn admitted(&self, event_id: &str, users: &[String]) {
        let Ok(held) = self.held.lock() else { return };
        if held.is_empty() {
            return;
        }
        for user in users {
            if let Some(listeners) = held.get(&(event_id.to_owned(), user.clone())) {
                listeners.wake.notify_waiters();
            }
        }
    }

    /// Wakes every held request for the event: it is sold out.
    pub(crate) fn closed(&self, event_id: &str) {
        let Ok(held) = self.held.lock() else { return };
        for ((event, _), listeners) in held.iter() {
            if event == event_id {
                listeners.wake.notify_waiters();
            }
        }
    }

    /// Registers a held request of the user's; the registration lasts as long as the
    /// returned `Listening`.
    fn listen(&self, event_id: &str, user: &str) -> Listening<'_> {
        let key = (event_id.to_owned(), user.to_owned());
        let wake = match self.held.lock() {
            Ok(mut held) => {
                let listeners = held.entry(key.clone()).or_insert_with(|| Listeners {
                    wake: Arc::new(Notify::new()),
                    requests: 0,
                });
                listeners.requests += 1;
                listeners.wake.clone()
            }
            // Without the registry the request still looks once every `RECHECK`.
            Err(_) => Arc::new(Notify::new()),
        };
        Listening {
            waiters: self,
            key,
            wake,
        }
    }
}

/// What wakes one user's held requests, and how many there are (a user may ask from two
/// places at once).
struct Listeners {
    wake: Arc<Notify>,
    requests: usize,
}

/// One held request's registration with `Waiters`.
struct Listening<'a> {
    waiters: &'a Waiters,
    key: (String, String),
    wake: Arc<Notify>,
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.waiters.held.lock()
            && let Some(listeners) = held.get_mut(&self.key)
        {
            listeners.requests -= 1;
            if listeners.requests == 0 {
                held.remove(&self.key);
            }
        }
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
    /// client may ask again at once. With the status, the wait applied when the request
    /// was held.
    pub async fn await_queue_status(
        &self,
        event_id: &str,
        queue_token: &str,
        wait: Duration,
    ) -> Result<(QueueStatus, Option<Duration>), TicketError> {
        let status = self.queue_status(event_id, queue_token).await?;
        let wait = wait.min(Duration::from_secs(self.settings.max_queue_wait_seconds));
        let soon = status
            .estimated_wait_seconds
            .is_some_and(|seconds| seconds <= wait.as_secs());
        if status.state != QueueState::Waiting || !soon || self.waiters.closing.is_cancelled() {
            return Ok((status, None));
        }
        let Ok(permit) = self.waiters.permits.clone().try_acquire_owned() else {
            return Ok((status, None));
        };
        let held = Held::new(permit);
        let user = self.queue_user(event_id, queue_token)?;
        let listening = self.waiters.listen(event_id, &user);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Listening before looking: an admission in between still wakes this request.
            let woken = listening.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = self.clock.now_ms();
            if self.admission(event_id, &user, now).await?.is_some()
                || self.is_sold_out(event_id).await
            {
                break;
            }
            tokio::select! {
                () = self.waiters.closing.cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                () = woken => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
        drop(listening);
        drop(held);
        let mut status = self.queue_status(event_id, queue_token).await?;
        if status.state == QueueState::Waiting {
            status.poll_after_seconds = Some(0);
        }
        Ok((status, Some(wait)))
    }

    /// Answers every held queue status request now and holds no more: the server is
    /// shutting down.
    pub fn stop_waiting(&self) {
        self.waiters.closing.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    use super::*;

    fn woken(notified: std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        notified.poll(&mut cx) == Poll::Ready(())
    }

    #[test]
    fn a_round_wakes_only_the_users_it_admitted() {
        let waiters = Waiters::new(10);
        let first = waiters.listen("e1", "u1");
        let second = waiters.listen("e1", "u2");
        let elsewhere = waiters.listen("e2", "u1");
        let mut first_woken = pin!(first.wake.notified());
        let mut second_woken = pin!(second.wake.notified());
        let mut elsewhere_woken = pin!(elsewhere.wake.notified());
        for notified in [
            first_woken.as_mut().enable(),
            second_woken.as_mut().enable(),
            elsewhere_woken.as_mut().enable(),
        ] {
            assert!(!notified);
        }

        waiters.admitted("e1", &["u1".to_owned(), "u9".to_owned()]);

        assert!(woken(first_woken.as_mut()));
        assert!(!woken(second_woken.as_mut()));
        assert!(!woken(elsewhere_woken.as_mut()), "same user, other event");
    }

    #[test]
    fn a_users_registration_lasts_while_any_of_its_requests_is_held() {
        let waiters = Waiters::new(10);
        let one = waiters.listen("e1", "u1");
        let two = waiters.listen("e1", "u1");
        let wake = two.wake.clone();
        let mut two_woken = pin!(wake.notified());
        two_woken.as_mut().enable();
        drop(one);

        waiters.admitted("e1", &["u1".to_owned()]);
        assert!(woken(two_woken.as_mut()), "the other request still hears");
        drop(two);
        assert!(waiters.held.lock().unwrap().is_empty());
    }
}
