//! Likes and unlikes, written by batch tasks (one on SQLite, four on PostgreSQL) that
//! make as many of the waiting requests as they can in one transaction. A post's requests
//! always go to the same task, so two tasks of a process never meet on a post's row: the
//! thousands of likes a second of a hot post become a few transactions a second, each
//! moving the count once.
//!
//! In a batch's transaction: the likes are inserted with `ON CONFLICT DO NOTHING`,
//! returning the ones that are new, and the unlikes deleted, returning the ones that were
//! there; a new like of someone else's post gets its notice row (once per liker and post)
//! and, when that row is new, a `post.liked` event; then each post's count moves by what
//! was inserted less what was deleted, by one `UPDATE` for the batch. Every waiter is
//! answered after the commit, with its post's count as the batch left it. A batch that
//! fails is tried again when a retry may work (the database gave it up in a deadlock, or a
//! post was deleted between its read and its count, which the next attempt finds gone);
//! otherwise each of its requests is tried alone, so that a failure is only its own
//! request's. No waiter hears of a change that did not commit.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use tokio::sync::{mpsc, oneshot};

use matsuri_core::SharedClock;
use matsuri_core::clock::Millis;
use matsuri_db::{Conn, Db, Dialect, batches, parameter_list, rows_per_message, value_rows};

use crate::service::{LIKED_TOPIC, LikeState, Liked, SocialError};

/// Requests a batch takes at most.
const LIKES_PER_BATCH: usize = 256;

/// Bytes of a post or user id (a UUID as text), and of a number, in a statement.
const ID_BYTES: usize = 36;
const NUMBER_BYTES: usize = 8;

/// A like or an unlike on its way to a batch task, and who waits for its answer.
pub(crate) struct PendingLike {
    post_id: String,
    user_id: String,
    /// A like; else an unlike.
    like: bool,
    done: oneshot::Sender<Result<LikeState, SocialError>>,
}

/// The queues of the batch tasks, one a task; the tasks end when this drops.
pub(crate) struct LikeWriters {
    lanes: Vec<mpsc::Sender<PendingLike>>,
}

impl LikeWriters {
    /// Starts the batch tasks. Must be called inside a tokio runtime.
    pub(crate) fn start(db: &Db, clock: &SharedClock) -> Self {
        let lanes = (0..batches::lanes_for(db))
            .map(|_| {
                let (db, clock) = (db.clone(), clock.clone());
                batches::start("post_likes", LIKES_PER_BATCH, 1, move |batch| {
                    let (db, clock) = (db.clone(), clock.clone());
                    async move { like_batch(&db, &clock, batch).await }
                })
            })
            .collect();
        Self { lanes }
    }

    /// `user_id` likes the post (`like`) or no longer does, in the next batch of the
    /// post's task.
    pub(crate) async fn write(
        &self,
        user_id: &str,
        post_id: &str,
        like: bool,
    ) -> Result<LikeState, SocialError> {
        let mut hasher = DefaultHasher::new();
        post_id.hash(&mut hasher);
        let lane =
            usize::try_from(hasher.finish() % self.lanes.len().max(1) as u64).unwrap_or_default();
        let queue = self
            .lanes
            .get(lane)
            .ok_or_else(|| SocialError::Internal(anyhow::anyhow!("no like writer")))?;
        batches::submit(queue, "like writer", |done| PendingLike {
            post_id: post_id.to_owned(),
            user_id: user_id.to_owned(),
            like,
            done,
        })
        .await
        .map_err(|stopped| SocialError::Internal(stopped.into()))?
    }
}

/// Makes one batch and answers each waiter. A second request of a (post, user) pair
/// already in the batch waits for the next batch, where it goes first: so the outcome is
/// the one they would have had one after another.
async fn like_batch(db: &Db, clock: &SharedClock, batch: Vec<PendingLike>) -> Vec<PendingLike> {
    let mut pairs = HashSet::new();
    let (requests, later): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|r| pairs.insert((r.post_id.clone(), r.user_id.clone())));
    if let Err((requests, error)) = write_answering(db, clock, requests).await {
        if requests.len() == 1 {
            refuse(requests, &error);
        } else {
            tracing::warn!(
                error = format!("{error:#}"),
                requests = requests.len(),
                "a batch of likes failed; each is tried alone"
            );
            for request in requests {
                if let Err((alone, error)) = write_answering(db, clock, vec![request]).await {
                    refuse(alone, &error);
                }
            }
        }
    }
    later
}

/// Writes the requests in one transaction, tried again while a retry may work, and
/// answers each after the commit; hands them back unanswered, with why, when it did not
/// commit.
async fn write_answering(
    db: &Db,
    clock: &SharedClock,
    requests: Vec<PendingLike>,
) -> Result<(), (Vec<PendingLike>, anyhow::Error)> {
    let written = batches::retrying(
        || write_likes(db, clock.now_ms(), &requests),
        Unwritten::may_retry,
    )
    .await;
    match written {
        Ok(answers) => {
            for (request, answer) in requests.into_iter().zip(answers) {
                let _ = request.done.send(answer);
            }
            Ok(())
        }
        Err(e) => Err((requests, e.into())),
    }
}

fn refuse(requests: Vec<PendingLike>, error: &anyhow::Error) {
    for request in requests {
        let _ = request.done.send(Err(SocialError::Internal(anyhow::anyhow!(
            "writing likes: {error:#}"
        ))));
    }
}

/// Why a batch did not commit.
#[derive(Debug, thiserror::Error)]
enum Unwritten {
    /// A post of the batch was deleted after the batch read it.
    #[error("a post was deleted while its likes were written")]
    PostGone,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Unwritten {
    fn may_retry(&self) -> bool {
        match self {
            Unwritten::PostGone => true,
            Unwritten::Database(e) => batches::is_retryable(e),
            Unwritten::Other(e) => batches::is_retryable_within(e),
        }
    }
}

/// A post as a batch needs it: author, text, and its count as the batch found it.
type BatchPost = (String, String, i64);

/// One batch in one transaction, for requests of distinct (post, user) pairs: each one's
/// answer, in order, or not found for a post that is not there.
async fn write_likes(
    db: &Db,
    now: Millis,
    requests: &[PendingLike],
) -> Result<Vec<Result<LikeState, SocialError>>, Unwritten> {
    let mut tx = db.begin().await?;
    let posts = read_posts(&mut tx, requests).await?;
    let (likes, unlikes): (Vec<&PendingLike>, Vec<&PendingLike>) = requests
        .iter()
        .filter(|r| posts.contains_key(&r.post_id))
        .partition(|r| r.like);
    let liked = insert_likes(&mut tx, now, &likes).await?;
    let unliked = returned_pairs(&mut tx, &pairs_of(&unlikes), |rows| {
        format!(
            "DELETE FROM post_likes WHERE (post_id, user_id) IN (VALUES {rows}) \
             RETURNING post_id, user_id"
        )
    })
    .await?;

    let others: Vec<(&str, &str)> = liked
        .iter()
        .filter(|(post, user)| posts.get(post).is_some_and(|(author, _, _)| author != user))
        .map(|(post, user)| (post.as_str(), user.as_str()))
        .collect();
    let first = returned_pairs(&mut tx, &others, |rows| {
        format!(
            "INSERT INTO post_like_notices (post_id, user_id) VALUES {rows} \
             ON CONFLICT (post_id, user_id) DO NOTHING RETURNING post_id, user_id"
        )
    })
    .await?;
    let events: Vec<(Option<&str>, Liked)> = first
        .iter()
        .filter_map(|(post, user)| {
            let (author, text, _) = posts.get(post)?;
            let liked = Liked {
                post_id: post.clone(),
                author_id: author.clone(),
                liker_id: user.clone(),
                excerpt: text.chars().take(80).collect(),
            };
            Some((Some(post.as_str()), liked))
        })
        .collect();
    if !events.is_empty() {
        matsuri_bus::publish_all(&mut tx, now, LIKED_TOPIC, &events).await?;
    }

    let mut moves: HashMap<&str, i64> = HashMap::new();
    for (post, _) in &liked {
        *moves.entry(post).or_default() += 1;
    }
    for (post, _) in &unliked {
        *moves.entry(post).or_default() -= 1;
    }
    moves.retain(|_, by| *by != 0);
    let counted = move_counts(&mut tx, &moves).await?;
    if counted.len() < moves.len() {
        return Err(Unwritten::PostGone);
    }
    tx.commit().await?;
    Ok(requests
        .iter()
        .map(|r| {
            let (_, _, found) = posts.get(&r.post_id).ok_or(SocialError::NotFound)?;
            Ok(LikeState {
                post_id: r.post_id.clone(),
                liked: r.like,
                like_count: counted.get(&r.post_id).copied().unwrap_or(*found),
            })
        })
        .collect())
}

/// The batch's posts that are there. Their author and text never change, so they are
/// read without a lock; a post deleted after this leaves no row for its count to move.
async fn read_posts(
    conn: &mut Conn,
    requests: &[PendingLike],
) -> Result<HashMap<String, BatchPost>, sqlx::Error> {
    let mut ids: Vec<&str> = requests.iter().map(|r| r.post_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut posts = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_message(1, ID_BYTES)) {
        let sql = format!(
            "SELECT id, author_id, text, like_count FROM posts WHERE id IN ({})",
            parameter_list(1, chunk.len())
        );
        let mut query =
            sqlx::query_as::<_, (String, String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (id, author, text, count) in query.fetch_all(&mut *conn).await? {
            posts.insert(id, (author, text, count));
        }
    }
    Ok(posts)
}

/// Inserts the likes; returns the (post, user) pairs that were new.
async fn insert_likes(
    conn: &mut Conn,
    now: Millis,
    likes: &[&PendingLike],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let dialect = Dialect::of(conn);
    let mut new = Vec::with_capacity(likes.len());
    for chunk in likes.chunks(rows_per_message(3, 2 * ID_BYTES + NUMBER_BYTES)) {
        let sql = format!(
            "INSERT INTO post_likes (post_id, user_id, liked_at) VALUES {} \
             ON CONFLICT (post_id, user_id) DO NOTHING RETURNING post_id, user_id",
            value_rows(dialect, chunk.len(), 3)
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for like in chunk {
            query = query
                .bind(like.post_id.as_str())
                .bind(like.user_id.as_str())
                .bind(now);
        }
        new.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(new)
}

fn pairs_of<'a>(requests: &[&'a PendingLike]) -> Vec<(&'a str, &'a str)> {
    requests
        .iter()
        .map(|r| (r.post_id.as_str(), r.user_id.as_str()))
        .collect()
}

/// Runs `statement(rows)` (rows: the `VALUES` placeholders of (post, user) pairs) over
/// `pairs`, a statement's worth at a time; returns the pairs the statements returned.
async fn returned_pairs(
    conn: &mut Conn,
    pairs: &[(&str, &str)],
    statement: impl Fn(&str) -> String,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let dialect = Dialect::of(conn);
    let mut returned = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(rows_per_message(2, 2 * ID_BYTES)) {
        let sql = statement(&value_rows(dialect, chunk.len(), 2));
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for (post, user) in chunk {
            query = query.bind(*post).bind(*user);
        }
        returned.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(returned)
}

/// Moves each post's count by its amount; returns the counts of the posts still there.
async fn move_counts(
    conn: &mut Conn,
    moves: &HashMap<&str, i64>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let dialect = Dialect::of(conn);
    let moves: Vec<(&str, i64)> = moves.iter().map(|(post, by)| (*post, *by)).collect();
    let mut counted = HashMap::with_capacity(moves.len());
    for chunk in moves.chunks(rows_per_message(2, ID_BYTES + NUMBER_BYTES)) {
        let sql = format!(
            "UPDATE posts SET like_count = like_count + v.column2 FROM (VALUES {}) AS v \
             WHERE posts.id = v.column1 RETURNING id, like_count",
            value_rows(dialect, chunk.len(), 2)
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
        for (post, by) in chunk {
            query = query.bind(*post).bind(*by);
        }
        counted.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(counted)
}
