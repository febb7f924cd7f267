//! Comment likes and the top comments. A like is one row per user and comment; the count
//! moves in the same transaction, only when a row was really inserted or deleted. The
//! ranking is a `coord` sorted set per room, moved by the same step after the commit
//! (scores are negated likes, so the head of the set is the most liked). When `coord`
//! has lost it (a restart of the in-process store, a flushed Redis), the first read
//! rebuilds it from the database; the counts shown always come from the database.

use std::time::Duration;

use matsuri_core::ids::UserId;

use crate::model::{Comment, CommentLikes, LiveError};
use crate::service::LiveService;

/// How many comments `top-comments` lists.
pub const TOP: usize = 10;
/// How many liked comments a rebuilt ranking holds.
const REBUILT: i64 = 1_000;
/// How long a ranking is trusted to be complete before it is checked again.
const BUILT_FOR: Duration = Duration::from_secs(7 * 24 * 3_600);

fn ranking(live_id: &str) -> String {
    format!("live:top:{live_id}")
}

fn built(live_id: &str) -> String {
    format!("live:top-built:{live_id}")
}

impl LiveService {
    /// Likes a shown comment; again: the same, nothing changes.
    pub async fn like(&self, user: &UserId, comment_id: &str) -> Result<CommentLikes, LiveError> {
        self.set_like(user, comment_id, true).await
    }

    /// Takes the like back; again: the same, nothing changes.
    pub async fn unlike(&self, user: &UserId, comment_id: &str) -> Result<CommentLikes, LiveError> {
        self.set_like(user, comment_id, false).await
    }

    async fn set_like(
        &self,
        user: &UserId,
        comment_id: &str,
        liked: bool,
    ) -> Result<CommentLikes, LiveError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let changed = if liked {
            sqlx::query(
                "INSERT INTO live_comment_likes (comment_id, user_id, liked_at) \
                 SELECT id, $2, $3 FROM live_comments WHERE id = $1 AND status = 'shown' \
                 ON CONFLICT (comment_id, user_id) DO NOTHING",
            )
            .bind(comment_id)
            .bind(user.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query("DELETE FROM live_comment_likes WHERE comment_id = $1 AND user_id = $2")
                .bind(comment_id)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        let step: i64 = if liked { 1 } else { -1 };
        let counted: Option<(i64, String, String)> = if changed == 1 {
            sqlx::query_as(
                "UPDATE live_comments SET likes = likes + $2 WHERE id = $1 \
                 RETURNING likes, live_id, status",
            )
            .bind(comment_id)
            .bind(step)
            .fetch_optional(&mut *tx)
            .await?
        } else {
            sqlx::query_as("SELECT likes, live_id, status FROM live_comments WHERE id = $1")
                .bind(comment_id)
                .fetch_optional(&mut *tx)
                .await?
        };
        let Some((likes, live_id, status)) = counted else {
            return Err(LiveError::NotFound);
        };
        if status != "shown" {
            return Err(LiveError::NotFound);
        }
        tx.commit().await?;
        if changed == 1 {
            self.coord
                .zincr(&ranking(&live_id), comment_id, -step)
                .await?;
            self.stage.likes(&live_id, comment_id, likes);
            if liked && likes == self.settings.highlight_likes {
                // Liked this much, it passes the sample: every viewer gets it once.
                let ids = [comment_id.to_owned()];
                for comment in self.comments_by_id(&live_id, &ids).await? {
                    self.stage.highlight(comment);
                }
            }
        }
        Ok(CommentLikes {
            comment_id: comment_id.to_owned(),
            likes,
        })
    }

    /// The room's most liked comments, most first (ties: the earlier first).
    pub async fn top_comments(&self, live_id: &str) -> Result<Vec<Comment>, LiveError> {
        self.room_row(live_id).await?;
        let key = ranking(live_id);
        if self.coord.get(&built(live_id)).await?.is_none() {
            self.rebuild_ranking(live_id).await?;
        }
        // A few more than shown, in case the ranking trails the counts a little.
        let ids = self.coord.zrange_head(&key, TOP * 2).await?;
        let mut comments = self.comments_by_id(live_id, &ids).await?;
        comments.retain(|c| c.likes > 0);
        comments.sort_by(|a, b| b.likes.cmp(&a.likes).then_with(|| a.id.cmp(&b.id)));
        comments.truncate(TOP);
        Ok(comments)
    }

    /// Builds the ranking again from the database.
    async fn rebuild_ranking(&self, live_id: &str) -> Result<(), LiveError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, likes FROM live_comments WHERE live_id = $1 AND status = 'shown' \
             AND likes > 0 ORDER BY likes DESC, id LIMIT $2",
        )
        .bind(live_id)
        .bind(REBUILT)
        .fetch_all(self.db.reader())
        .await?;
        let key = ranking(live_id);
        self.coord.del(&key).await?;
        let members: Vec<(String, i64)> =
            rows.into_iter().map(|(id, likes)| (id, -likes)).collect();
        self.coord.zadd_many(&key, &members).await?;
        self.coord.set_nx(&built(live_id), "1", BUILT_FOR).await?;
        Ok(())
    }

    /// Takes a comment out of the ranking (it was removed).
    pub(crate) async fn unrank(&self, live_id: &str, comment_id: &str) -> Result<(), LiveError> {
        self.coord.zrem(&ranking(live_id), comment_id).await?;
        Ok(())
    }
}
