//! Chat (seed 001 §2): direct and group chats, messages numbered in their stored order,
//! delivered and read marks with their receipts, unread counts, history both ways, and
//! resuming over the socket. Only members see a chat; to anyone else it does not exist.
//!
//! A message is stored with its `chat.message` event in one transaction; the fan-out
//! ([`fanout`]) takes it from the bus to every member's sockets through the realtime
//! gateway, and to the offline ones as a notification and a Web Push through the
//! [`OfflineNotifier`] the server provides.

mod fanout;
mod model;
mod routes;
mod service;
mod socket;

use std::sync::Arc;

use matsuri_db::{Migration, MigrationSet};
use matsuri_realtime::{FrameHandler, Realtime};

pub use fanout::{GROUP, OfflineMessage, OfflineNotifier};
pub use model::{Chat, ChatError, ChatKind, MAX_MEMBERS, MAX_TEXT, Member, Message, Stored};
pub use service::{ChatService, MESSAGE_TOPIC, Moved, Towards};

/// Chat as the server composes it: its routes, its fan-out, its socket frames.
pub struct ChatModule {
    chats: Arc<ChatService>,
    realtime: Arc<Realtime>,
    notifier: Arc<dyn OfflineNotifier>,
}

impl ChatModule {
    pub fn new(
        chats: Arc<ChatService>,
        realtime: Arc<Realtime>,
        notifier: Arc<dyn OfflineNotifier>,
    ) -> Self {
        Self {
            chats,
            realtime,
            notifier,
        }
    }

    /// What the gateway hands chat: `send`, `delivered`, `read`, `resume`.
    pub fn frames(&self) -> Arc<dyn FrameHandler> {
        Arc::new(socket::ChatFrames {
            chats: self.chats.clone(),
            realtime: self.realtime.clone(),
        })
    }
}

impl matsuri_module::Module for ChatModule {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("chat", "Direct and group chats, messages, receipts"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes::routes(self.chats.clone(), self.realtime.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let fanout = fanout::Fanout {
            chats: self.chats.clone(),
            realtime: self.realtime.clone(),
            notifier: self.notifier.clone(),
        };
        vec![matsuri_bus::Subscription::new(
            MESSAGE_TOPIC,
            GROUP,
            Arc::new(fanout),
        )]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "chat",
    migrations: &[Migration {
        version: 1,
        name: "chats, members, messages",
        sql: include_str!("../migrations/0001_chat.sql"),
        postgres_sql: None,
    }],
};
