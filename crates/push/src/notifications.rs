//! Stored notifications: recording notices (gathering the unread ones of one subject),
//! listing them newest first, and marking them read.
//!
//! Gathering is one upsert on the partial unique index of unread notifications per
//! (user, kind, subject), so concurrent notices can neither make two unread notifications
//! nor lose a count: the first inserts, the others update the row it made (PostgreSQL
//! waits on the row, SQLite's writes are serial). An actor counts once per notification
//! through the primary key of `notification_actors`. Every recorded notice takes a new
//! position from a sequence, and a notification keeps the highest it was given, so it
//! moves to the top whatever order concurrent notices commit in.

use std::collections::HashMap;

use matsuri_bus::publish_with;
use matsuri_core::clock::Millis;
use matsuri_core::ids::UserId;
use matsuri_core::page::Page;
use matsuri_core::timefmt;
use matsuri_db::{Statements, Tx};

use crate::sender::{QUEUED_TOPIC, QueuedPush};
use crate::{
    Actor, Notice, Notification, NotificationKind, NotificationPage, PushError, PushService,
    UnreadCount,
};

/// The sequence notification positions come from.
const POSITION_SEQ: &str = "notification_position_seq";
/// Queued pushes written in one request.
const EVENTS_TOGETHER: u64 = 500;
/// Actors listed per notification, latest first.
const ACTORS_SHOWN: i64 = 3;

const GATHER: &str = "INSERT INTO notifications \
       (id, user_id, kind, subject_id, actor_count, body, url, position, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $8) \
     ON CONFLICT (user_id, kind, subject_id) WHERE read_at IS NULL DO UPDATE SET \
       body = CASE WHEN excluded.position > notifications.position THEN excluded.body ELSE notifications.body END, \
       url = CASE WHEN excluded.position > notifications.position THEN excluded.url ELSE notifications.url END, \
       updated_at = CASE WHEN excluded.position > notifications.position THEN excluded.updated_at ELSE notifications.updated_at END, \
       position = CASE WHEN excluded.position > notifications.position THEN excluded.position ELSE notifications.position END \
     RETURNING id";

type NotificationRow = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
);

impl PushService {
    /// Records a notification for each notice (gathering into the user's unread one of
    /// the same kind and subject) and queues a Web Push for each of the user's
    /// subscriptions, all in one transaction. For at-least-once callers: a notice that
    /// comes again with the same `source_id` (e.g. the bus event id it came from) for the
    /// same user, kind and subject changes nothing and sends nothing. A notice without
    /// `web_push` is recorded only (its user is online and hears of it live). Returns the
    /// notifications the new notices went into, as their users now see them.
    pub async fn notify(
        &self,
        source_id: &str,
        notices: &[Notice],
    ) -> anyhow::Result<Vec<(UserId, Notification)>> {
        if notices.is_empty() {
            return Ok(Vec::new());
        }
        // One order for every caller, so that two transactions touching the same
        // notifications lock them in the same order.
        let mut ordered: Vec<&Notice> = notices.iter().collect();
        ordered.sort_by(|a, b| {
            (a.user_id.as_str(), a.kind.as_str(), &a.subject_id).cmp(&(
                b.user_id.as_str(),
                b.kind.as_str(),
                &b.subject_id,
            ))
        });
        let now = self.clock.now_ms();
        self.db.prefetch_sequence(POSITION_SEQ).await?;
        let mut tx = self.db.begin().await?;
        let mut recorded = Vec::with_capacity(ordered.len());
        for notice in ordered {
            if let Some(id) = self.record(&mut tx, source_id, notice, now).await? {
                recorded.push((notice, id));
            }
        }
        let mut users: Vec<&str> = recorded.iter().map(|(n, _)| n.user_id.as_str()).collect();
        users.dedup();
        let subscriptions = subscriptions_of(&mut tx, &users).await?;
        let mut write = Statements::new();
        let mut queued = 0_u64;
        for (notice, notification_id) in recorded.iter().filter(|(n, _)| n.web_push) {
            for subscription_id in subscriptions
                .get(notice.user_id.as_str())
                .into_iter()
                .flatten()
            {
                let push = QueuedPush::new(subscription_id, notification_id, notice);
                publish_with(&mut write, now, QUEUED_TOPIC, None, &push)?;
                queued += 1;
                // A big group's message is thousands of pushes: sent in parts, each well
                // inside SQLite's limit of parameters per request.
                if queued.is_multiple_of(EVENTS_TOGETHER) {
                    std::mem::take(&mut write).run(&mut tx).await?;
                }
            }
        }
        if !write.is_empty() {
            write.run(&mut tx).await?;
        }
        tx.commit().await?;
        metrics::counter!("matsuri_push_notifications_total").increment(recorded.len() as u64);
        metrics::counter!("matsuri_push_queued_total").increment(queued);
        tracing::debug!(
            source_id,
            notifications = recorded.len(),
            pushes = queued,
            "notices recorded"
        );
        let mut touched = Vec::with_capacity(recorded.len());
        for (notice, id) in recorded {
            if let Some(shown) = self.notification(&notice.user_id, &id).await? {
                touched.push((notice.user_id.clone(), shown));
            }
        }
        Ok(touched)
    }

    /// Forgets every notification about `subject_id` of `kind` (a deleted post's).
    pub async fn forget(&self, kind: NotificationKind, subject_id: &str) -> anyhow::Result<u64> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "DELETE FROM notification_actors WHERE notification_id IN \
             (SELECT id FROM notifications WHERE kind = $1 AND subject_id = $2)",
        )
        .bind(kind.as_str())
        .bind(subject_id)
        .execute(&mut *tx)
        .await?;
        let gone = sqlx::query("DELETE FROM notifications WHERE kind = $1 AND subject_id = $2")
            .bind(kind.as_str())
            .bind(subject_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }

    /// One of `user`'s notifications, as the list shows it.
    pub async fn notification(
        &self,
        user: &UserId,
        id: &str,
    ) -> anyhow::Result<Option<Notification>> {
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, kind, subject_id, actor_count, body, url, read_at, created_at, updated_at, position \
             FROM notifications WHERE user_id = $1 AND id = $2",
        )
        .bind(user.as_str())
        .bind(id)
        .fetch_all(self.db.reader())
        .await?;
        Ok(self.shown(rows).await?.pop().map(|(_, n)| n))
    }

    /// Records one notice unless its source was applied before; returns the id of the
    /// notification it went into.
    async fn record(
        &self,
        tx: &mut Tx,
        source_id: &str,
        notice: &Notice,
        now: Millis,
    ) -> anyhow::Result<Option<String>> {
        let fresh: Option<String> = sqlx::query_scalar(
            "INSERT INTO notification_sources (source_id, user_id, kind, subject_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (source_id, user_id, kind, subject_id) DO NOTHING RETURNING source_id",
        )
        .bind(source_id)
        .bind(notice.user_id.as_str())
        .bind(notice.kind.as_str())
        .bind(&notice.subject_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        if fresh.is_none() {
            return Ok(None);
        }
        let position = self.db.next_in_sequence(tx, POSITION_SEQ).await?;
        let id: String = sqlx::query_scalar(GATHER)
            .bind(matsuri_core::ids::new_uuid_v7())
            .bind(notice.user_id.as_str())
            .bind(notice.kind.as_str())
            .bind(&notice.subject_id)
            .bind(&notice.text)
            .bind(notice.url.as_deref())
            .bind(position)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
        let added: Option<String> = sqlx::query_scalar(
            "INSERT INTO notification_actors (notification_id, actor_id, name, position) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (notification_id, actor_id) DO NOTHING RETURNING actor_id",
        )
        .bind(&id)
        .bind(&notice.actor.id)
        .bind(&notice.actor.name)
        .bind(position)
        .fetch_optional(&mut **tx)
        .await?;
        if added.is_some() {
            sqlx::query("UPDATE notifications SET actor_count = actor_count + 1 WHERE id = $1")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE notification_actors SET name = $3, \
                   position = CASE WHEN position < $4 THEN $4 ELSE position END \
                 WHERE notification_id = $1 AND actor_id = $2",
            )
            .bind(&id)
            .bind(&notice.actor.id)
            .bind(&notice.actor.name)
            .bind(position)
            .execute(&mut **tx)
            .await?;
        }
        Ok(Some(id))
    }

    /// `user`'s notifications, newest first: `limit` of them from after `cursor` (the
    /// `next_cursor` of the previous page), with the count of all unread ones.
    pub async fn notifications(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<NotificationPage, PushError> {
        // A cursor that is no position of the list (the positions are whole numbers
        // from 1) ends it: an empty page.
        let before = match cursor {
            None => i64::MAX,
            Some(text) => text.parse::<i64>().unwrap_or(0),
        };
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, kind, subject_id, actor_count, body, url, read_at, created_at, updated_at, position \
             FROM notifications WHERE user_id = $1 AND position < $2 ORDER BY position DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        let items = self.shown(rows).await?;
        let page = Page::from_keyed_rows(items, limit);
        Ok(NotificationPage {
            items: page.items,
            unread_count: self.unread_count(user).await?,
            next_cursor: page.next_cursor,
        })
    }

    /// The latest actors of each of these notifications.
    /// Rows as their users see them, each with its position as the cursor.
    async fn shown(
        &self,
        rows: Vec<NotificationRow>,
    ) -> anyhow::Result<Vec<(String, Notification)>> {
        let mut actors = self.latest_actors(&rows).await?;
        let mut items = Vec::with_capacity(rows.len());
        for (
            id,
            kind,
            subject_id,
            actor_count,
            text,
            url,
            read_at,
            created_at,
            updated_at,
            position,
        ) in rows
        {
            let kind = NotificationKind::parse(&kind).ok_or_else(|| {
                anyhow::anyhow!("a stored notification has the unknown kind {kind}")
            })?;
            let notification = Notification {
                actors: actors.remove(&id).unwrap_or_default(),
                id,
                kind,
                subject_id,
                actor_count,
                text,
                url,
                read: read_at.is_some(),
                created_at: timefmt::rfc3339(created_at),
                updated_at: timefmt::rfc3339(updated_at),
            };
            items.push((position.to_string(), notification));
        }
        Ok(items)
    }

    async fn latest_actors(
        &self,
        rows: &[NotificationRow],
    ) -> anyhow::Result<HashMap<String, Vec<Actor>>> {
        let mut actors: HashMap<String, Vec<Actor>> = HashMap::new();
        for chunk in rows.chunks(matsuri_db::rows_per_statement(1)) {
            let sql = format!(
                "SELECT notification_id, actor_id, name FROM (\
                   SELECT notification_id, actor_id, name, \
                     ROW_NUMBER() OVER (PARTITION BY notification_id ORDER BY position DESC) AS n \
                   FROM notification_actors WHERE notification_id IN ({})) AS latest \
                 WHERE n <= $1 ORDER BY notification_id, n",
                matsuri_db::parameter_list(2, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql))
                .bind(ACTORS_SHOWN);
            for row in chunk {
                query = query.bind(&row.0);
            }
            for (notification_id, id, name) in query.fetch_all(self.db.reader()).await? {
                actors
                    .entry(notification_id)
                    .or_default()
                    .push(Actor { id, name });
            }
        }
        Ok(actors)
    }

    /// How many of `user`'s notifications are unread.
    pub async fn unread_count(&self, user: &UserId) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user.as_str())
        .fetch_one(self.db.reader())
        .await?)
    }

    /// Marks `user`'s notifications read: `up_to` (a notification id) and every one
    /// older than it in the newest-first order, or all of them. An unknown `up_to`, or
    /// someone else's, is [`PushError::NotificationNotFound`].
    pub async fn mark_read(
        &self,
        user: &UserId,
        up_to: Option<&str>,
    ) -> Result<UnreadCount, PushError> {
        let through = match up_to {
            None => i64::MAX,
            Some(id) => sqlx::query_scalar::<_, i64>(
                "SELECT position FROM notifications WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user.as_str())
            .fetch_optional(self.db.reader())
            .await?
            .ok_or(PushError::NotificationNotFound)?,
        };
        sqlx::query(
            "UPDATE notifications SET read_at = $3 \
             WHERE user_id = $1 AND read_at IS NULL AND position <= $2",
        )
        .bind(user.as_str())
        .bind(through)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(UnreadCount {
            unread_count: self.unread_count(user).await?,
        })
    }
}

/// The subscription ids of each of `users`.
async fn subscriptions_of(
    tx: &mut Tx,
    users: &[&str],
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in users.chunks(matsuri_db::rows_per_statement(1)) {
        let sql = format!(
            "SELECT user_id, id FROM push_subscriptions WHERE user_id IN ({}) ORDER BY id",
            matsuri_db::parameter_list(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for user in chunk {
            query = query.bind(*user);
        }
        for (user, id) in query.fetch_all(&mut **tx).await? {
            found.entry(user).or_default().push(id);
        }
    }
    Ok(found)
}
