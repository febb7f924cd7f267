//! Writes that many requests hand to one task (a few on PostgreSQL), which makes as many
//! of them as are waiting in one transaction. In a stampede the database then sees a few
//! statements a batch instead of a transaction a request; when the crowd is gone a batch
//! is one request and costs what it did alone. Idempotency keys, wallet charges, seat
//! holds, wallet payments, likes and live comments go this way, and their writers retry
//! a batch by one rule ([`retrying`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use crate::{Db, Dialect};

/// How often a batch is tried while other transactions keep crossing it (a deadlock, a
/// failed serialization, a wallet's version changed first).
pub const ATTEMPTS: u32 = 25;

/// Waits before batch `attempt` is tried again: longer each time, and at random, so two
/// batches that crossed do not cross again at once.
pub async fn back_off(attempt: u32) {
    let pause = rand::rng().random_range(1..=5 * u64::from(attempt));
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// Runs `work` until it succeeds, fails in a way `may_retry` refuses, or has been tried
/// [`ATTEMPTS`] times, backing off between tries: the one retry rule of every batch
/// writer (a batch crossed by another is worth trying again; anything else is not).
pub async fn retrying<T, E, Fut>(
    mut work: impl FnMut() -> Fut,
    may_retry: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(e) if attempt < ATTEMPTS && may_retry(&e) => {
                back_off(attempt).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Whether a failed batch may simply be tried again: PostgreSQL gave up one of two
/// transactions that waited on each other, or could not serialize it. Batches lock many
/// rows in whatever order their statements reach them, so two nodes' batches can cross.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// [`is_retryable`] for a failure that came wrapped (a service's internal error).
pub fn is_retryable_within(err: &anyhow::Error) -> bool {
    err.downcast_ref::<sqlx::Error>().is_some_and(is_retryable)
}

/// The batch task a request was handed to has stopped (the process is shutting down),
/// or dropped the request unanswered.
#[derive(Debug, thiserror::Error)]
#[error("the {0} has stopped")]
pub struct Stopped(pub &'static str);

/// Hands a request to a batch task started by [`start`] and waits for its answer.
/// `request` builds the request around the sender the task answers on; `task` names the
/// task in the error when it has stopped.
pub async fn submit<T, R>(
    queue: &mpsc::Sender<T>,
    task: &'static str,
    request: impl FnOnce(oneshot::Sender<R>) -> T,
) -> Result<R, Stopped> {
    let (done, answer) = oneshot::channel();
    queue.send(request(done)).await.map_err(|_| Stopped(task))?;
    answer.await.map_err(|_| Stopped(task))
}

/// How many batches to make at once: several on PostgreSQL, which writes them in
/// parallel (batches crossing there is what `is_retryable` is for); one on SQLite, whose
/// single writer would only take them in turn.
pub fn lanes_for(db: &Db) -> usize {
    match db.dialect() {
        Dialect::Postgres => POSTGRES_LANES,
        Dialect::Sqlite => 1,
    }
}

const POSTGRES_LANES: usize = 4;

/// Starts `lanes` tasks that run `work` on batches of what is sent to the returned
/// sender, each at most `most` at a time and one batch after another; the lanes take
/// from the one queue and work at the same time. `work` hands back what it left for the
/// next batch (say, a second request of a user already in this one), which goes first in
/// the same lane. The tasks end when every sender has dropped and nothing is left. Must
/// be called inside a tokio runtime.
pub fn start<T, F, Fut>(job: &'static str, most: usize, lanes: usize, work: F) -> mpsc::Sender<T>
where
    T: Send + 'static,
    F: FnMut(Vec<T>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<T>> + Send + 'static,
{
    let (sender, queue) = mpsc::channel(4 * most * lanes.max(1));
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..lanes.max(1) {
        tokio::spawn(lane(job, most, queue.clone(), work.clone()));
    }
    sender
}

async fn lane<T, F, Fut>(
    job: &'static str,
    most: usize,
    queue: Arc<Mutex<mpsc::Receiver<T>>>,
    mut work: F,
) where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<T>>,
{
    let mut batch: Vec<T> = Vec::with_capacity(most);
    loop {
        if batch.is_empty() {
            if queue.lock().await.recv_many(&mut batch, most).await == 0 {
                return;
            }
        } else if let Ok(mut queue) = queue.try_lock() {
            // Another lane may be holding the queue while it waits for work; what this
            // lane carries over does not wait for that.
            while batch.len() < most {
                match queue.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        let span = tracing::info_span!("job.batch", job, items = batch.len());
        batch = work(std::mem::take(&mut batch)).instrument(span).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Barrier;

    use super::*;

    #[tokio::test]
    async fn lanes_make_their_batches_at_the_same_time() {
        // Each batch waits for another to reach the barrier: one lane alone would wait
        // for ever.
        let barrier = Arc::new(Barrier::new(2));
        let (made, mut answers) = mpsc::unbounded_channel();
        let sender = start("test", 1, 2, move |batch: Vec<u32>| {
            let (barrier, made) = (barrier.clone(), made.clone());
            async move {
                barrier.wait().await;
                for item in batch {
                    made.send(item).unwrap_or_default();
                }
                Vec::new()
            }
        });
        for item in [1, 2] {
            sender.send(item).await.unwrap_or_default();
        }
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let answer = tokio::time::timeout(Duration::from_secs(10), answers.recv()).await;
            seen.push(answer.ok().flatten().unwrap_or_default());
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    }
}
