//! Chats, messages and marks.
//!
//! Sending numbers the message inside the chat row's lock (`last_seq + 1`), so a chat's
//! messages have one stored order and their ids rise with it; the message, the sender's
//! marks and the `chat.message` event commit together, and the fan-out
//! ([`crate::fanout`]) delivers from the bus, so a crash after the commit loses nothing.
//! A member's read and delivered marks only move forward; `unread` is the chat's last
//! number minus the read mark (a member's own message moves their mark to it), so it is
//! exact from the database alone and needs no counter to reset.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Row;

use matsuri_core::ids::UserId;
use matsuri_core::page::Page;
use matsuri_core::{SharedClock, timefmt};
use matsuri_db::{Db, Tx, parameter_list};
use matsuri_module::People;

use crate::model::{Chat, ChatError, ChatKind, MAX_MEMBERS, Member, Message, Stored};

/// The topic of stored messages.
pub const MESSAGE_TOPIC: &str = "chat.message";

/// A mark that moved: the message it now stands at, who moved it, when.
#[derive(Debug, Clone)]
pub struct Moved {
    pub chat_id: String,
    pub msg_id: String,
    pub user_id: String,
    pub at: i64,
    /// For each other sender whose messages the delivered mark passed, their newest
    /// one: `(sender, message)`.
    pub delivered_to: Vec<(String, String)>,
    /// The other members.
    pub others: Vec<String>,
}

pub struct ChatService {
    db: Db,
    clock: SharedClock,
    people: Arc<dyn People>,
    /// Wakes the bus after a message is stored, so the fan-out does not wait for a poll.
    nudge: matsuri_bus::Nudge,
}

/// Which way a history page goes.
#[derive(Debug, Clone, Copy)]
pub enum Towards {
    /// Newest first, from the newest or from before a message, down to (not including)
    /// `after` when given.
    Older {
        before: Option<uuid::Uuid>,
        after: Option<uuid::Uuid>,
    },
    /// Oldest first, from after a message.
    Newer(uuid::Uuid),
}

const MESSAGE_COLUMNS: &str =
    "id, chat_id, seq, sender_id, text, client_msg_id, created_at, delivered_at, read_at";

fn message_of(row: &sqlx::any::AnyRow) -> Result<(Stored, Option<i64>, Option<i64>), sqlx::Error> {
    Ok((
        Stored {
            id: row.try_get("id")?,
            chat_id: row.try_get("chat_id")?,
            seq: row.try_get("seq")?,
            sender_id: row.try_get("sender_id")?,
            text: row.try_get("text")?,
            client_msg_id: row.try_get("client_msg_id")?,
            created_at: row.try_get("created_at")?,
            origin: None,
        },
        row.try_get("delivered_at")?,
        row.try_get("read_at")?,
    ))
}

fn view((stored, delivered_at, read_at): (Stored, Option<i64>, Option<i64>)) -> Message {
    Message {
        id: stored.id,
        chat_id: stored.chat_id,
        sender_id: stored.sender_id,
        text: stored.text,
        client_msg_id: stored.client_msg_id,
        created_at: timefmt::rfc3339(stored.created_at),
        delivered_at: delivered_at.map(timefmt::rfc3339),
        read_at: read_at.map(timefmt::rfc3339),
    }
}

/// The next message id of a chat: a fresh UUIDv7, or the one after the chat's last id
/// when the clock has not moved past it, so ids rise with the stored order.
fn next_id(last: Option<&str>) -> String {
    let fresh = uuid::Uuid::now_v7();
    match last.and_then(|l| uuid::Uuid::parse_str(l).ok()) {
        Some(last) if last >= fresh => uuid::Uuid::from_u128(last.as_u128().wrapping_add(1)),
        _ => fresh,
    }
    .to_string()
}

impl ChatService {
    pub fn new(
        db: Db,
        clock: SharedClock,
        people: Arc<dyn People>,
        nudge: matsuri_bus::Nudge,
    ) -> Self {
        Self {
            db,
            clock,
            people,
            nudge,
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn people(&self) -> &Arc<dyn People> {
        &self.people
    }

    /// Creates a chat of the caller and `member_ids`; a direct chat (one other member)
    /// that exists already is returned instead (false: not created).
    pub async fn create(
        &self,
        who: &UserId,
        member_ids: &[String],
        title: Option<String>,
    ) -> Result<(Chat, bool), ChatError> {
        let me = who.as_str().to_owned();
        let mut others: Vec<String> = member_ids.iter().filter(|m| **m != me).cloned().collect();
        others.sort();
        others.dedup();
        if others.is_empty() {
            return Err(ChatError::invalid(
                "member_ids",
                "name at least one member other than yourself",
            ));
        }
        if others.len() + 1 > MAX_MEMBERS {
            return Err(ChatError::invalid(
                "member_ids",
                format!("a chat has at most {MAX_MEMBERS} members, you included"),
            ));
        }
        let known = self.people.names(&others).await?;
        if let Some(unknown) = others.iter().find(|m| !known.contains_key(*m)) {
            return Err(ChatError::invalid(
                "member_ids",
                format!("{unknown} is not a user"),
            ));
        }
        let (kind, direct_key, title) = if others.len() == 1 {
            let mut pair = [me.clone(), others[0].clone()];
            pair.sort();
            (ChatKind::Direct, Some(pair.join(":")), None)
        } else {
            (ChatKind::Group, None, title)
        };
        let id = matsuri_core::ids::new_uuid_v7();
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO chats (id, kind, title, direct_key, created_by, created_at, last_activity_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(title.as_deref())
        .bind(direct_key.as_deref())
        .bind(&me)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let existing: String = sqlx::query_scalar("SELECT id FROM chats WHERE direct_key = $1")
                .bind(direct_key.as_deref())
                .fetch_one(self.db.reader())
                .await?;
            return Ok((self.get(who, &existing).await?, false));
        }
        let members: Vec<&String> = std::iter::once(&me).chain(&others).collect();
        for chunk in members.chunks(matsuri_db::rows_per_statement(3)) {
            let sql = format!(
                "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES {}",
                matsuri_db::value_rows(self.db.dialect(), chunk.len(), 3)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for member in chunk {
                query = query.bind(&id).bind(member.as_str()).bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((self.get(who, &id).await?, true))
    }

    /// One chat of the caller's; 404 for others.
    pub async fn get(&self, who: &UserId, chat_id: &str) -> Result<Chat, ChatError> {
        let mut chats = self.views(who, &[chat_id.to_owned()]).await?;
        chats.pop().ok_or(ChatError::ChatNotFound)
    }

    /// The caller's chats, most recent activity first; the cursor is the last chat of
    /// the previous page.
    pub async fn list(
        &self,
        who: &UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Chat>, ChatError> {
        let mut sql = String::from(
            "SELECT c.id FROM chats c JOIN chat_members m ON m.chat_id = c.id AND m.user_id = $1",
        );
        if cursor.is_some() {
            sql.push_str(
                " JOIN chats k ON k.id = $3 WHERE (c.last_activity_at < k.last_activity_at \
                 OR (c.last_activity_at = k.last_activity_at AND c.id < k.id))",
            );
        }
        sql.push_str(" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2");
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(who.as_str())
            .bind(i64::from(limit) + 1);
        if let Some(cursor) = cursor {
            query = query.bind(cursor);
        }
        let ids: Vec<String> = query.fetch_all(self.db.reader()).await?;
        let chats = self.views(who, &ids).await?;
        Ok(Page::from_rows(chats, limit, |c| c.id.clone()))
    }

    /// The chats among `ids` the caller is in, as they show them, in the order given.
    async fn views(&self, who: &UserId, ids: &[String]) -> Result<Vec<Chat>, ChatError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = parameter_list(2, ids.len());
        let sql = format!(
            "SELECT c.id, c.kind, c.title, c.created_at, c.last_seq, c.last_msg_id, m.read_seq \
             FROM chats c JOIN chat_members m ON m.chat_id = c.id AND m.user_id = $1 \
             WHERE c.id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(who.as_str());
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        let sql = format!(
            "SELECT chat_id, user_id FROM chat_members WHERE chat_id IN ({}) ORDER BY joined_at, user_id",
            parameter_list(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id);
        }
        let memberships = query.fetch_all(self.db.reader()).await?;
        let last_ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<Option<String>, _>("last_msg_id").ok().flatten())
            .collect();
        let mut last_messages: HashMap<String, Message> = HashMap::new();
        if !last_ids.is_empty() {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id IN ({})",
                parameter_list(1, last_ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &last_ids {
                query = query.bind(id);
            }
            for row in query.fetch_all(self.db.reader()).await? {
                let message = view(message_of(&row)?);
                last_messages.insert(message.chat_id.clone(), message);
            }
        }
        let people: Vec<String> = memberships.iter().map(|(_, u)| u.clone()).collect();
        let names = self.people.names(&people).await?;
        let mut members: HashMap<String, Vec<Member>> = HashMap::new();
        for (chat, user) in memberships {
            let name = names.get(&user).cloned().unwrap_or_default();
            members
                .entry(chat)
                .or_default()
                .push(Member { id: user, name });
        }
        let mut by_id: HashMap<String, Chat> = HashMap::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let last_seq: i64 = row.try_get("last_seq")?;
            let read_seq: i64 = row.try_get("read_seq")?;
            let chat = Chat {
                kind: if kind == "direct" {
                    ChatKind::Direct
                } else {
                    ChatKind::Group
                },
                title: row.try_get("title")?,
                members: members.remove(&id).unwrap_or_default(),
                last_message: last_messages.remove(&id),
                unread: (last_seq - read_seq).max(0),
                created_at: timefmt::rfc3339(row.try_get("created_at")?),
                id: id.clone(),
            };
            by_id.insert(id, chat);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Stores a message from a member; the same `client_msg_id` again returns the first
    /// message (false: nothing new was stored).
    pub async fn send(
        &self,
        who: &UserId,
        chat_id: &str,
        text: &str,
        client_msg_id: &str,
        origin: Option<&str>,
    ) -> Result<(Stored, bool), ChatError> {
        let now = self.clock.now_ms();
        let me = who.as_str();
        let mut tx = self.db.begin().await?;
        let numbered: Option<(i64, Option<String>)> = sqlx::query_as(
            "UPDATE chats SET last_seq = last_seq + 1, last_activity_at = $3 \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2) \
             RETURNING last_seq, last_msg_id",
        )
        .bind(chat_id)
        .bind(me)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((seq, last_id)) = numbered else {
            return Err(ChatError::ChatNotFound);
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE chat_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        );
        let earlier = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(me)
            .bind(client_msg_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = earlier {
            tx.rollback().await?;
            return Ok((message_of(&row)?.0, false));
        }
        let stored = Stored {
            id: next_id(last_id.as_deref()),
            chat_id: chat_id.to_owned(),
            seq,
            sender_id: me.to_owned(),
            text: text.to_owned(),
            client_msg_id: client_msg_id.to_owned(),
            created_at: now,
            origin: origin.map(str::to_owned),
        };
        sqlx::query(
            "INSERT INTO chat_messages (id, chat_id, seq, sender_id, text, client_msg_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&stored.id)
        .bind(chat_id)
        .bind(seq)
        .bind(me)
        .bind(text)
        .bind(client_msg_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE chats SET last_msg_id = $2 WHERE id = $1")
            .bind(chat_id)
            .bind(&stored.id)
            .execute(&mut *tx)
            .await?;
        advance(&mut tx, chat_id, me, seq, Mark::Read, now).await?;
        matsuri_bus::publish(&mut tx, now, MESSAGE_TOPIC, Some(chat_id), &stored).await?;
        tx.commit().await?;
        self.nudge.nudge();
        metrics::counter!("matsuri_chat_messages_total").increment(1);
        Ok((stored, true))
    }

    /// One message as the history shows it.
    pub async fn message(&self, chat_id: &str, msg_id: &str) -> Result<Message, ChatError> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1 AND chat_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(msg_id)
            .bind(chat_id)
            .fetch_optional(self.db.reader())
            .await?
            .ok_or(ChatError::MessageNotFound)?;
        Ok(view(message_of(&row)?))
    }

    /// A page of a chat's history.
    pub async fn history(
        &self,
        who: &UserId,
        chat_id: &str,
        towards: Towards,
        limit: u32,
    ) -> Result<Page<Message>, ChatError> {
        self.member(who, chat_id).await?;
        let (before, after, order) = match towards {
            Towards::Older { before, after } => (before, after, "DESC"),
            Towards::Newer(after) => (None, Some(after), "ASC"),
        };
        let mut filter = String::new();
        let mut bounds = Vec::new();
        for (bound, op) in [(before, "<"), (after, ">")] {
            if let Some(id) = bound {
                bounds.push(id.to_string());
                filter.push_str(&format!(" AND id {op} ${}", bounds.len() + 2));
            }
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE chat_id = $1{filter} ORDER BY id {order} LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(i64::from(limit) + 1);
        for bound in bounds {
            query = query.bind(bound);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        let messages = rows
            .iter()
            .map(|row| message_of(row).map(view))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(messages, limit, |m| m.id.clone()))
    }

    /// Up to `limit` messages of the caller's chats after message `after`, by id.
    pub async fn after(
        &self,
        who: &UserId,
        after: &uuid::Uuid,
        limit: u32,
    ) -> Result<Vec<Stored>, ChatError> {
        let sql = format!(
            "SELECT {} FROM chat_messages m JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $1 \
             WHERE m.id > $2 ORDER BY m.id LIMIT $3",
            MESSAGE_COLUMNS
                .split(", ")
                .map(|c| format!("m.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(who.as_str())
            .bind(after.to_string())
            .bind(i64::from(limit))
            .fetch_all(self.db.reader())
            .await?;
        rows.iter()
            .map(|row| message_of(row).map(|(stored, _, _)| stored))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Into::into)
    }

    /// Fails with 404 unless the caller is a member.
    async fn member(&self, who: &UserId, chat_id: &str) -> Result<(), ChatError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                .bind(chat_id)
                .bind(who.as_str())
                .fetch_optional(self.db.reader())
                .await?;
        found.map(|_| ()).ok_or(ChatError::ChatNotFound)
    }

    /// The caller has message `msg_id` (and so every earlier one). `None` when that
    /// changed nothing (already had it, or their own message).
    pub async fn delivered(
        &self,
        who: &UserId,
        chat_id: &str,
        msg_id: &str,
    ) -> Result<Option<Moved>, ChatError> {
        self.mark(who, chat_id, msg_id, Mark::Delivered).await
    }

    /// The caller has read up to and including `msg_id`: their unread count after it,
    /// and the mark when it moved.
    pub async fn read(
        &self,
        who: &UserId,
        chat_id: &str,
        msg_id: &str,
    ) -> Result<(i64, Option<Moved>), ChatError> {
        let moved = self.mark(who, chat_id, msg_id, Mark::Read).await?;
        let unread: i64 = sqlx::query_scalar(
            "SELECT c.last_seq - m.read_seq FROM chats c JOIN chat_members m ON m.chat_id = c.id \
             WHERE c.id = $1 AND m.user_id = $2",
        )
        .bind(chat_id)
        .bind(who.as_str())
        .fetch_one(self.db.reader())
        .await?;
        Ok((unread.max(0), moved))
    }

    async fn mark(
        &self,
        who: &UserId,
        chat_id: &str,
        msg_id: &str,
        mark: Mark,
    ) -> Result<Option<Moved>, ChatError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        // The chat row's lock orders marks with sends and with each other, so the check
        // "has every other member passed this message" sees every mark committed before.
        let locked = sqlx::query(
            "UPDATE chats SET last_seq = last_seq WHERE id = $1 \
             AND EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2)",
        )
        .bind(chat_id)
        .bind(who.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if locked == 0 {
            return Err(ChatError::ChatNotFound);
        }
        let target: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM chat_messages WHERE id = $1 AND chat_id = $2")
                .bind(msg_id)
                .bind(chat_id)
                .fetch_optional(&mut *tx)
                .await?;
        let seq = target.ok_or(ChatError::MessageNotFound)?;
        let Some((from, to)) = advance(&mut tx, chat_id, who.as_str(), seq, mark, now).await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        // Each other sender's newest message the delivered mark passed: what they hear.
        let delivered_to: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.sender_id, m.id FROM chat_messages m WHERE m.chat_id = $1 AND m.sender_id <> $2 \
             AND m.seq = (SELECT MAX(x.seq) FROM chat_messages x WHERE x.chat_id = $1 \
             AND x.sender_id = m.sender_id AND x.seq > $3 AND x.seq <= $4)",
        )
        .bind(chat_id)
        .bind(who.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?;
        let others: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM chat_members WHERE chat_id = $1 AND user_id <> $2",
        )
        .bind(chat_id)
        .bind(who.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Moved {
            chat_id: chat_id.to_owned(),
            msg_id: msg_id.to_owned(),
            user_id: who.as_str().to_owned(),
            at: now,
            delivered_to,
            others,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Delivered,
    /// Read implies delivered.
    Read,
}

/// Moves `user`'s mark in `chat_id` forward to `seq` (never back), and stamps
/// `delivered_at` / `read_at` on the messages every other member has now passed. When
/// the marks moved, the delivered mark's old and new place. Runs under the chat row's
/// lock.
async fn advance(
    tx: &mut Tx,
    chat_id: &str,
    user: &str,
    seq: i64,
    mark: Mark,
    now: i64,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let (old_read, old_delivered): (i64, i64) = sqlx::query_as(
        "SELECT read_seq, delivered_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2",
    )
    .bind(chat_id)
    .bind(user)
    .fetch_one(&mut **tx)
    .await?;
    let new_delivered = old_delivered.max(seq);
    let new_read = if mark == Mark::Read {
        old_read.max(seq)
    } else {
        old_read
    };
    if new_delivered == old_delivered && new_read == old_read {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE chat_members SET read_seq = $3, delivered_seq = $4 WHERE chat_id = $1 AND user_id = $2",
    )
    .bind(chat_id)
    .bind(user)
    .bind(new_read)
    .bind(new_delivered)
    .execute(&mut **tx)
    .await?;
    for (column, mark_column, from, to) in [
        (
            "delivered_at",
            "delivered_seq",
            old_delivered,
            new_delivered,
        ),
        ("read_at", "read_seq", old_read, new_read),
    ] {
        if to == from {
            continue;
        }
        let sql = format!(
            "UPDATE chat_messages SET {column} = $4 WHERE chat_id = $1 AND seq > $2 AND seq <= $3 \
             AND {column} IS NULL AND sender_id <> $5 AND NOT EXISTS (SELECT 1 FROM chat_members o \
             WHERE o.chat_id = chat_messages.chat_id AND o.user_id <> chat_messages.sender_id \
             AND o.{mark_column} < chat_messages.seq)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(from)
            .bind(to)
            .bind(now)
            .bind(user)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some((old_delivered, new_delivered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rise_even_when_the_clock_does_not() {
        let far = uuid::Uuid::from_u128(u128::MAX - 5).to_string();
        let next = next_id(Some(&far));
        assert!(next > far, "{next} after {far}");
        let fresh = next_id(None);
        assert!(next_id(Some(&fresh)) > fresh);
    }
}
