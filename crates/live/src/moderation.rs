//! What a room's moderators do to comments: remove one (gone from the archive and the
//! top comments, and from every viewer's screen), and review the held ones. Each review
//! decision labels the comment (approve: ham, reject: spam) for the next spam model.

use serde::{Deserialize, Serialize};

use matsuri_core::Identity;
use matsuri_core::page::Page;
use matsuri_realtime::Frame;

use crate::archive::{COMMENT_COLUMNS, CommentRow};
use crate::model::{Comment, LiveError};
use crate::rooms::topic;
use crate::service::LiveService;
use crate::writer::{COMMENTS_TOPIC, CommentsEvent, Staged};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// A held comment with the classifier's score.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    #[serde(flatten)]
    pub comment: Comment,
    /// The classifier's spam score, 0–1.
    pub score: f64,
}

/// A held comment's row: the comment's columns and its score.
type HeldRow = (String, String, String, String, i64, i64, i64, f64);

impl LiveService {
    /// Removes a comment: every viewer is told, and it leaves the archive and the top
    /// comments. Removing one already removed changes nothing.
    pub async fn remove(
        &self,
        who: &Identity,
        live_id: &str,
        comment_id: &str,
    ) -> Result<(), LiveError> {
        self.moderated(who, live_id).await?;
        let removed = sqlx::query(
            "UPDATE live_comments SET status = 'removed' WHERE id = $1 AND live_id = $2 \
             AND status IN ('shown', 'held')",
        )
        .bind(comment_id)
        .bind(live_id)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if removed == 0 {
            let there: Option<String> = sqlx::query_scalar(
                "SELECT status FROM live_comments WHERE id = $1 AND live_id = $2",
            )
            .bind(comment_id)
            .bind(live_id)
            .fetch_optional(self.db.reader())
            .await?;
            return match there {
                Some(_) => Ok(()),
                None => Err(LiveError::NotFound),
            };
        }
        self.unrank(live_id, comment_id).await?;
        let frame = Frame::json(&serde_json::json!({
            "type": "comment_removed",
            "live_id": live_id,
            "comment_id": comment_id,
        }))?;
        self.realtime.to_topic(&topic(live_id), &frame).await?;
        metrics::counter!("matsuri_live_removed_total").increment(1);
        Ok(())
    }

    /// The held comments, oldest first.
    pub async fn review_queue(
        &self,
        who: &Identity,
        live_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Review>, LiveError> {
        self.moderated(who, live_id).await?;
        let sql = format!(
            "SELECT {COMMENT_COLUMNS}, score FROM live_comments WHERE live_id = $1 \
             AND status = 'held' AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(live_id)
            .bind(cursor.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.db.reader())
            .await?;
        let scores: Vec<f64> = rows.iter().map(|r| r.7).collect();
        let comments = self
            .comment_views(
                rows.into_iter()
                    .map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6))
                    .collect(),
            )
            .await?;
        let reviews = comments
            .into_iter()
            .zip(scores)
            .map(|(comment, score)| Review { comment, score })
            .collect();
        Ok(Page::from_rows(reviews, limit, |r| r.comment.id.clone()))
    }

    /// Approves a held comment (it is shown to every viewer now) or rejects it.
    pub async fn decide(
        &self,
        who: &Identity,
        live_id: &str,
        comment_id: &str,
        decision: Decision,
    ) -> Result<Comment, LiveError> {
        let room = self.moderated(who, live_id).await?;
        let (status, label) = match decision {
            Decision::Approve => ("shown", "ham"),
            Decision::Reject => ("rejected", "spam"),
        };
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "UPDATE live_comments SET status = $3, label = $4 WHERE id = $1 AND live_id = $2 \
             AND status = 'held' RETURNING {COMMENT_COLUMNS}"
        );
        let row: Option<CommentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(comment_id)
            .bind(live_id)
            .bind(status)
            .bind(label)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(LiveError::NotFound);
        };
        let comment = self
            .comment_views(vec![row])
            .await?
            .pop()
            .ok_or(LiveError::NotFound)?;
        if decision == Decision::Approve {
            let event = CommentsEvent {
                live_id: live_id.to_owned(),
                display_per_second: room.moderation.display_per_second,
                comments: vec![Staged {
                    comment: comment.clone(),
                    moderator: true,
                }],
            };
            let now = self.clock.now_ms();
            matsuri_bus::publish(&mut tx, now, COMMENTS_TOPIC, Some(live_id), &event).await?;
        }
        tx.commit().await?;
        metrics::counter!("matsuri_live_reviewed_total", "decision" => label).increment(1);
        Ok(comment)
    }
}
