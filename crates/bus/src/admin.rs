//! What operators see and do: per-group progress (the seed's summary table) and the dead
//! letters, which they can inspect, send back to their group's queue, or delete.

use serde::Serialize;

use matsuri_core::SharedClock;
use matsuri_core::timefmt::rfc3339;
use matsuri_db::Db;

use crate::Subscription;

/// One group's progress with one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsumerStats {
    pub topic: String,
    pub group: String,
    /// Events handled successfully.
    pub processed: i64,
    /// Failed attempts, including those of events later handled or dead.
    pub failed: i64,
    /// Dead letters waiting for an operator.
    pub dead: i64,
    /// Events not yet handled: waiting, in backoff, being handled, or not yet relayed.
    pub lag: i64,
}

/// A delivery that used up its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub topic: String,
    pub group: String,
    pub event_id: String,
    pub attempts: i64,
    pub last_error: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub dead_at: String,
}

#[derive(Clone)]
pub struct BusAdmin {
    db: Db,
    clock: SharedClock,
    subscriptions: Vec<(&'static str, &'static str)>,
}

type DeadLetterRow = (String, String, String, String, i64, String, String, i64);

const DEAD_LETTER_COLUMNS: &str = "SELECT l.id, l.topic, l.group_name, l.event_id, l.attempts, l.last_error, o.payload, l.dead_at \
     FROM bus_dead_letters l JOIN outbox o ON o.id = l.event_id";

fn dead_letter(row: DeadLetterRow) -> DeadLetter {
    let (id, topic, group, event_id, attempts, last_error, payload, dead_at) = row;
    DeadLetter {
        id,
        topic,
        group,
        event_id,
        attempts,
        last_error,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        dead_at: rfc3339(dead_at),
    }
}

impl BusAdmin {
    pub fn new(db: Db, clock: SharedClock, subscriptions: &[Subscription]) -> Self {
        Self {
            db,
            clock,
            subscriptions: subscriptions.iter().map(|s| (s.topic, s.group)).collect(),
        }
    }

    /// Every subscription's figures.
    pub async fn consumers(&self) -> Result<Vec<ConsumerStats>, sqlx::Error> {
        let mut out = Vec::with_capacity(self.subscriptions.len());
        for (topic, group) in &self.subscriptions {
            let cursor: Option<(i64, i64, i64)> =
                sqlx::query_as("SELECT position, processed, failed FROM bus_cursors WHERE group_name = $1 AND topic = $2")
                    .bind(group)
                    .bind(topic)
                    .fetch_optional(self.db.reader())
                    .await?;
            let (position, processed, failed) = cursor.unwrap_or_default();
            let (dead, parked): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM bus_dead_letters WHERE group_name = $1 AND topic = $2), \
                        (SELECT COUNT(*) FROM bus_parked WHERE group_name = $1 AND topic = $2 AND status = 'pending')",
            )
            .bind(*group)
            .bind(*topic)
            .fetch_one(self.db.reader())
            .await?;
            let behind: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE topic = $1 AND (seq IS NULL OR seq > $2)",
            )
            .bind(*topic)
            .bind(position)
            .fetch_one(self.db.reader())
            .await?;
            out.push(ConsumerStats {
                topic: (*topic).to_owned(),
                group: (*group).to_owned(),
                processed,
                failed,
                dead,
                lag: behind + parked,
            });
        }
        Ok(out)
    }

    /// Dead letters, oldest first, optionally of one group: `limit + 1` after `cursor`.
    pub async fn dead_letters(
        &self,
        group: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, sqlx::Error> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{DEAD_LETTER_COLUMNS} WHERE ($1 = '' OR l.group_name = $1) AND l.id > $2 ORDER BY l.id LIMIT $3"
        )))
        .bind(group.unwrap_or_default())
        .bind(cursor.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(dead_letter).collect())
    }

    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, sqlx::Error> {
        let row: Option<DeadLetterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{DEAD_LETTER_COLUMNS} WHERE l.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.map(dead_letter))
    }

    /// Sends a dead letter back to its group's queue with fresh attempts. False when there
    /// is no such dead letter.
    pub async fn retry(&self, id: &str) -> Result<bool, sqlx::Error> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let taken: Option<(String, String, String)> = sqlx::query_as(
            "DELETE FROM bus_dead_letters WHERE id = $1 RETURNING group_name, topic, event_id",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((group, topic, event_id)) = taken else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(
            "UPDATE bus_parked SET status = 'pending', attempts = 0, next_attempt_at = $4, last_error = NULL \
             WHERE group_name = $1 AND topic = $2 AND event_id = $3",
        )
        .bind(&group)
        .bind(&topic)
        .bind(&event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            dead_letter = id,
            group,
            event_id,
            "dead letter sent back for retry"
        );
        Ok(true)
    }

    /// Deletes a dead letter; its event stays unhandled by that group. False when there is
    /// no such dead letter.
    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query("DELETE FROM bus_dead_letters WHERE id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await?
            .rows_affected();
        if deleted == 1 {
            tracing::info!(dead_letter = id, "dead letter deleted");
        }
        Ok(deleted == 1)
    }
}
