//! `Idempotency-Key` support: the same key from the same user replays the first answer and
//! does nothing again; the same key with a different request is refused.
//!
//! The key row is claimed with an insert that only one request can win. The winner links
//! the resource it creates (inside the transaction that creates it) and stores its answer
//! at the end. A request that fails before creating anything gives the key back, so the
//! client may retry; one that fails after keeps it, and whoever settles the resource (the
//! recovery sweep) stores the answer instead.

use std::time::Duration;

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::{Conn, Db, Param, Statements};
use matsuri_core::SharedClock;
use matsuri_core::error::StoredResponse;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// This request owns the key and must do the work.
    Claimed,
    /// The work was done before: answer with this.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// Another request with this key is still running.
    InProgress,
}

/// The `Idempotency-Key` a request claimed, as the work it guards sees it.
#[derive(Debug, Clone, Copy)]
pub struct KeyLink<'a> {
    pub user_id: &'a str,
    pub scope: &'a str,
    pub key: &'a str,
}

impl KeyLink<'_> {
    /// Ties the resource the work creates to the key, inside the creating transaction.
    pub async fn link(&self, conn: &mut Conn, resource_id: &str) -> Result<(), sqlx::Error> {
        let mut write = Statements::new();
        self.link_with(&mut write, resource_id);
        write.run(conn).await
    }

    /// [`Self::link`] as one of statements sent together.
    pub fn link_with(&self, write: &mut Statements, resource_id: &str) {
        write.add(
            "UPDATE idempotency_keys SET resource_id = $4 \
             WHERE user_id = $1 AND scope = $2 AND idem_key = $3",
            vec![
                Param::from(self.user_id),
                Param::from(self.scope),
                Param::from(self.key),
                Param::from(resource_id),
            ],
        );
    }
}

/// A stable fingerprint of a request body.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
pub struct IdempotencyStore {
    db: Db,
    clock: SharedClock,
    answers: mpsc::Sender<Answer>,
}

/// A key waiting to be written, with its answer or as a claim, and who waits for the
/// outcome.
struct Answer {
    user_id: String,
    scope: String,
    key: String,
    fingerprint: String,
    response: Option<StoredResponse>,
    done: oneshot::Sender<Result<bool, sqlx::Error>>,
}

impl Answer {
    /// The user, scope and key it is for.
    fn names(&self) -> (&str, &str, &str) {
        (&self.user_id, &self.scope, &self.key)
    }
}

/// Parameters each written key binds.
const ANSWER_COLUMNS: usize = 8;

impl IdempotencyStore {
    /// Must be called inside a tokio runtime: it starts the task that writes answers.
    pub fn new(db: Db, clock: SharedClock) -> Self {
        let most = crate::rows_per_statement(ANSWER_COLUMNS);
        let lanes = crate::batches::lanes_for(&db);
        let answers = {
            let (db, clock) = (db.clone(), clock.clone());
            crate::batches::start("idempotency_keys", most, lanes, move |batch| {
                let (db, now) = (db.clone(), clock.now_ms());
                async move {
                    write_batch(&db, now, batch).await;
                    Vec::new()
                }
            })
        };
        Self { db, clock, answers }
    }

    /// Claims `key`, or reports what an earlier request with it left.
    pub async fn claim(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<KeyState, sqlx::Error> {
        if self.insert(user_id, scope, key, fingerprint, None).await? {
            return Ok(KeyState::Claimed);
        }
        match self.find(user_id, scope, key, fingerprint).await? {
            Some(state) => Ok(state),
            // Given back between our insert and our read: try once more.
            None => Box::pin(self.claim(user_id, scope, key, fingerprint)).await,
        }
    }

    /// What an earlier request with `key` left, without claiming it: `None` when the key
    /// is unused.
    pub async fn find(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<KeyState>, sqlx::Error> {
        let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT fingerprint, status_code, response_body FROM idempotency_keys \
             WHERE user_id = $1 AND scope = $2 AND idem_key = $3",
        )
        .bind(user_id)
        .bind(scope)
        .bind(key)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(row.map(|row| match row {
            (stored, _, _) if stored != fingerprint => KeyState::Mismatch,
            (_, Some(status), Some(body)) => KeyState::Replay(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
            _ => KeyState::InProgress,
        }))
    }

    /// Claims `key`, waiting up to `wait` for a concurrent request with the same key to
    /// finish so its answer can be replayed.
    pub async fn claim_or_wait(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        fingerprint: &str,
        wait: Duration,
    ) -> Result<KeyState, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let state = self.claim(user_id, scope, key, fingerprint).await?;
            if state != KeyState::InProgress || tokio::time::Instant::now() >= deadline {
                return Ok(state);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Records a finished answer for a request that changed nothing, when the key is new.
    /// Returns false when the key was used before; claim it to learn how.
    pub async fn record_answer(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
    ) -> Result<bool, sqlx::Error> {
        self.insert(user_id, scope, key, fingerprint, Some(response.clone()))
            .await
    }

    /// Inserts the key, with its answer or without one (a claim), when it is new; false
    /// when it was used before. Keys arriving together are written together, in one
    /// statement, so a stampede's claims and refusals cost the writer a few statements.
    async fn insert(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        fingerprint: &str,
        response: Option<StoredResponse>,
    ) -> Result<bool, sqlx::Error> {
        let (done, result) = oneshot::channel();
        let answer = Answer {
            user_id: user_id.to_owned(),
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            response,
            done,
        };
        if self.answers.send(answer).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        result.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }

    /// Stores the answer to replay.
    pub async fn complete(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $4, response_body = $5, completed_at = $6 \
             WHERE user_id = $1 AND scope = $2 AND idem_key = $3 AND status_code IS NULL",
        )
        .bind(user_id)
        .bind(scope)
        .bind(key)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await
        .map(|_| ())
    }

    /// Stores the answer for whichever key created `resource_id`, if one did and it has no
    /// answer yet; used by whoever settles a resource its request left unfinished. Added
    /// to statements sent together, inside the settling transaction.
    pub fn complete_for_resource(
        write: &mut Statements,
        resource_id: &str,
        response: &StoredResponse,
        now: i64,
    ) {
        write.add(
            "UPDATE idempotency_keys SET status_code = $2, response_body = $3, completed_at = $4 \
             WHERE resource_id = $1 AND status_code IS NULL",
            vec![
                Param::from(resource_id),
                Param::from(i64::from(response.status)),
                Param::from(&response.body),
                Param::from(now),
            ],
        );
    }

    /// Frees the key that created `resource_id` if it has no answer yet, for whoever
    /// settles a resource its request left unfinished with nothing done: the same key
    /// may then be sent again and runs afresh.
    pub async fn release_for_resource(
        conn: &mut Conn,
        resource_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE resource_id = $1 AND status_code IS NULL")
            .bind(resource_id)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Forgets answers completed before `answered_before`, and keys claimed before
    /// `abandoned_before` by requests that never created anything.
    pub async fn prune(
        &self,
        answered_before: i64,
        abandoned_before: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE completed_at IS NOT NULL AND completed_at < $1",
        )
        .bind(answered_before)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        let abandoned = sqlx::query(
            "DELETE FROM idempotency_keys WHERE status_code IS NULL AND resource_id IS NULL AND created_at < $1",
        )
        .bind(abandoned_before)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        Ok(done + abandoned)
    }

    /// Gives the key back when the request failed before creating anything.
    pub async fn release(&self, user_id: &str, scope: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND scope = $2 AND idem_key = $3 \
             AND status_code IS NULL AND resource_id IS NULL",
        )
        .bind(user_id)
        .bind(scope)
        .bind(key)
        .execute(self.db.writer())
        .await
        .map(|_| ())
    }
}

/// Writes one batch of keys and tells each waiter how it went.
async fn write_batch(db: &Db, now: i64, mut batch: Vec<Answer>) {
    // Keys in one order in every statement, so that statements running at once on
    // PostgreSQL wait on each other's keys without ever deadlocking.
    batch.sort_by(|a, b| a.names().cmp(&b.names()));
    // One row per key: a second one for a key (next to the first, in this order) is not
    // new.
    let mut rows: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut repeats = Vec::new();
    for answer in batch {
        if rows.last().is_some_and(|row| row.names() == answer.names()) {
            repeats.push(answer);
        } else {
            rows.push(answer);
        }
    }
    match insert_answers(db, now, &rows).await {
        Ok(new) => {
            for (row, new) in rows.into_iter().zip(new) {
                let _ = row.done.send(Ok(new));
            }
            for repeat in repeats {
                let _ = repeat.done.send(Ok(false));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for row in rows.into_iter().chain(repeats) {
                let _ = row.done.send(Err(sqlx::Error::Protocol(message.clone())));
            }
        }
    }
}

/// Writes the keys; returns, key by key, whether it was new.
async fn insert_answers(db: &Db, now: i64, rows: &[Answer]) -> Result<Vec<bool>, sqlx::Error> {
    let keys: Vec<NewKey<'_>> = rows
        .iter()
        .map(|row| NewKey {
            user_id: &row.user_id,
            scope: &row.scope,
            key: &row.key,
            fingerprint: &row.fingerprint,
            response: row.response.as_ref(),
        })
        .collect();
    IdempotencyStore::insert_all(db.writer(), db.dialect(), &keys, now).await
}

/// A key to record: with its finished answer, or without one (a claim).
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    pub user_id: &'a str,
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub response: Option<&'a StoredResponse>,
}

impl IdempotencyStore {
    /// How many keys [`Self::insert_all`] takes at most.
    pub fn keys_per_statement() -> usize {
        crate::rows_per_statement(ANSWER_COLUMNS)
    }

    /// Records the keys that are new, in one statement (at most
    /// [`Self::keys_per_statement`] of them, each once), on `executor`, which may be the
    /// transaction doing the work they answer; returns, key by key, whether it was new.
    pub async fn insert_all<'c, E>(
        executor: E,
        dialect: crate::Dialect,
        keys: &[NewKey<'_>],
        now: i64,
    ) -> Result<Vec<bool>, sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "INSERT INTO idempotency_keys \
             (user_id, scope, idem_key, fingerprint, status_code, response_body, created_at, completed_at) \
             VALUES {} ON CONFLICT (user_id, scope, idem_key) DO NOTHING RETURNING user_id, scope, idem_key",
            crate::value_rows(dialect, keys.len(), ANSWER_COLUMNS)
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql));
        for key in keys {
            let answer = key.response;
            query = query
                .bind(key.user_id)
                .bind(key.scope)
                .bind(key.key)
                .bind(key.fingerprint)
                .bind(answer.map(|a| i64::from(a.status)))
                .bind(answer.map(|a| a.body.as_str()))
                .bind(now)
                .bind(answer.map(|_| now));
        }
        let inserted: HashSet<(String, String, String)> =
            query.fetch_all(executor).await?.into_iter().collect();
        Ok(keys
            .iter()
            .map(|k| {
                let names = (k.user_id.to_owned(), k.scope.to_owned(), k.key.to_owned());
                inserted.contains(&names)
            })
            .collect())
    }
}
