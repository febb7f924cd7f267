//! Writes that many requests hand to one task, which makes as many of them as are waiting
//! in one transaction. In a stampede the database then sees a few statements a batch
//! instead of a transaction a request; when the crowd is gone a batch is one request and
//! costs what it did alone. Wallet charges, seat holds and wallet payments go this way.

use std::future::Future;

use tokio::sync::mpsc;
use tracing::Instrument;

/// Whether a failed batch may simply be tried again: PostgreSQL gave up one of two
/// transactions that waited on each other, or could not serialize it. Batches lock many
/// rows in whatever order their statements reach them, so two nodes' batches can cross.
pub(crate) fn is_retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// Starts the task that runs `work` on batches of what is sent to the returned sender,
/// at most `most` at a time, one batch after another. `work` hands back what it left for
/// the next batch (say, a second request of a user already in this one), which goes
/// first. The task ends when every sender has dropped and nothing is left. Must be
/// called inside a tokio runtime.
pub(crate) fn start<T, F, Fut>(job: &'static str, most: usize, mut work: F) -> mpsc::Sender<T>
where
    T: Send + 'static,
    F: FnMut(Vec<T>) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<T>> + Send,
{
    let (sender, mut queue) = mpsc::channel(4 * most);
    tokio::spawn(async move {
        let mut batch: Vec<T> = Vec::with_capacity(most);
        loop {
            if batch.is_empty() {
                if queue.recv_many(&mut batch, most).await == 0 {
                    return;
                }
            } else {
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
    });
    sender
}
