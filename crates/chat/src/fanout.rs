//! Delivery of stored messages, from the bus (group `chat-delivery`, keyed by chat, so a
//! chat's messages go out in their stored order): each message to every member's sockets
//! on whatever node, the unread counts of the members it adds to, and for members with
//! no socket anywhere a notification and a Web Push. At least once: a socket gets a
//! message once (frames carry the message id), the notifier acts once per event.
//!
//! Receipts (delivered, read) go straight to the sockets from the request that stores
//! them ([`announce_delivered`], [`announce_read`]): they are stored already, and a lost
//! one shows in the history.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use matsuri_bus::{Consumer, Event};
use matsuri_core::timefmt;
use matsuri_db::parameter_list;
use matsuri_realtime::{Frame, Realtime};

use crate::model::Stored;
use crate::service::{ChatService, Moved};

/// The consumer group.
pub const GROUP: &str = "chat-delivery";

/// A message for someone with no socket open.
#[derive(Debug, Clone)]
pub struct OfflineMessage<'a> {
    pub chat_id: &'a str,
    pub msg_id: &'a str,
    pub sender_id: &'a str,
    pub sender_name: &'a str,
    pub text: &'a str,
}

/// Tells users without a socket about a message (a notification and a Web Push); the
/// server provides it from the push domain.
#[async_trait::async_trait]
pub trait OfflineNotifier: Send + Sync {
    /// Once per `source_id`: a repeated call changes nothing.
    async fn notify(
        &self,
        source_id: &str,
        recipients: &[String],
        message: OfflineMessage<'_>,
    ) -> anyhow::Result<()>;
}

pub(crate) struct Fanout {
    pub(crate) chats: Arc<ChatService>,
    pub(crate) realtime: Arc<Realtime>,
    pub(crate) notifier: Arc<dyn OfflineNotifier>,
}

/// A member as the fan-out needs them: who, and their unread count now.
struct Member {
    user_id: String,
    unread: i64,
}

impl Fanout {
    async fn members(&self, chats: &[&str]) -> anyhow::Result<HashMap<String, Vec<Member>>> {
        let sql = format!(
            "SELECT m.chat_id, m.user_id, c.last_seq - m.read_seq FROM chat_members m \
             JOIN chats c ON c.id = m.chat_id WHERE m.chat_id IN ({})",
            parameter_list(1, chats.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for chat in chats {
            query = query.bind(*chat);
        }
        let mut members: HashMap<String, Vec<Member>> = HashMap::new();
        for (chat, user_id, unread) in query.fetch_all(self.chats.db().reader()).await? {
            members.entry(chat).or_default().push(Member {
                user_id,
                unread: unread.max(0),
            });
        }
        Ok(members)
    }

    async fn deliver(&self, events: &[&Event]) -> anyhow::Result<()> {
        let stored = events
            .iter()
            .map(|e| e.decode::<Stored>())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut chat_ids: Vec<&str> = stored.iter().map(|m| m.chat_id.as_str()).collect();
        chat_ids.sort_unstable();
        chat_ids.dedup();
        let members = self.members(&chat_ids).await?;
        let senders: Vec<String> = stored.iter().map(|m| m.sender_id.clone()).collect();
        let names = self.chats.people().names(&senders).await?;
        let mut offline: HashMap<&str, Vec<String>> = HashMap::new();
        for chat in &chat_ids {
            let of_chat = members.get(*chat).map(Vec::as_slice).unwrap_or_default();
            let users: Vec<&str> = of_chat.iter().map(|m| m.user_id.as_str()).collect();
            let online = self.realtime.online(&users).await?;
            let away = users
                .iter()
                .zip(online)
                .filter(|(_, on)| !on)
                .map(|(u, _)| (*u).to_owned())
                .collect();
            offline.insert(chat, away);
        }
        for (event, message) in events.iter().zip(&stored) {
            let of_chat = members
                .get(&message.chat_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let users: Vec<&str> = of_chat.iter().map(|m| m.user_id.as_str()).collect();
            let frame = Frame::json(&message.frame())?
                .once_per(message.key())
                .except(message.origin.as_deref());
            self.realtime.to_users(&users, &frame).await?;
            metrics::counter!("matsuri_chat_deliveries_total").increment(users.len() as u64);
            let away: Vec<String> = offline
                .get(message.chat_id.as_str())
                .into_iter()
                .flatten()
                .filter(|u| **u != message.sender_id)
                .cloned()
                .collect();
            if !away.is_empty() {
                let sender_name = names.get(&message.sender_id).map_or("", String::as_str);
                let offline = OfflineMessage {
                    chat_id: &message.chat_id,
                    msg_id: &message.id,
                    sender_id: &message.sender_id,
                    sender_name,
                    text: &message.text,
                };
                self.notifier.notify(&event.id, &away, offline).await?;
            }
        }
        // The unread counts as they stand after the whole batch, once per member.
        for chat in &chat_ids {
            for member in members.get(*chat).into_iter().flatten() {
                let frame = Frame::json(
                    &json!({"type": "unread", "chat_id": chat, "count": member.unread}),
                )?;
                self.realtime
                    .to_users(&[member.user_id.as_str()], &frame)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for Fanout {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.deliver(&[event]).await
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        Some(self.deliver(events).await)
    }
}

/// Tells each sender whose messages `moved.user_id` now has, with the newest of them.
pub(crate) async fn announce_delivered(realtime: &Realtime, moved: &Moved) {
    for (sender, msg_id) in &moved.delivered_to {
        let frame = json!({
            "type": "delivered",
            "chat_id": moved.chat_id,
            "msg_id": msg_id,
            "user_id": moved.user_id,
            "at": timefmt::rfc3339(moved.at),
        });
        announce(realtime, &[sender.as_str()], &frame).await;
    }
}

/// Tells the other members that `moved.user_id` read up to a message, and the reader's
/// own sockets their unread count.
pub(crate) async fn announce_read(realtime: &Realtime, moved: &Moved, unread: i64) {
    let frame = json!({
        "type": "read",
        "chat_id": moved.chat_id,
        "msg_id": moved.msg_id,
        "user_id": moved.user_id,
        "at": timefmt::rfc3339(moved.at),
    });
    let others: Vec<&str> = moved.others.iter().map(String::as_str).collect();
    announce(realtime, &others, &frame).await;
    let count = json!({"type": "unread", "chat_id": moved.chat_id, "count": unread});
    announce(realtime, &[moved.user_id.as_str()], &count).await;
}

async fn announce(realtime: &Realtime, users: &[&str], value: &serde_json::Value) {
    let sent = match Frame::json(value) {
        Ok(frame) => realtime.to_users(users, &frame).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::warn!(
            error = format!("{e:#}"),
            "announcing a receipt failed; it is stored"
        );
    }
}
