//! The `push` port and stored notifications (`api.md`, "Push and notifications").
//!
//! A domain that has news for a user calls [`PushService::notify`]: in one transaction the
//! notice becomes a stored notification (notices on one subject gather into one unread
//! notification, "A and 12 others liked your post") and a bus event for each of the user's
//! Web Push subscriptions. The bus consumer ([`PushModule::subscriptions`]) then encrypts
//! each message for its browser (RFC 8291 `aes128gcm`), signs a VAPID token (RFC 8292) and
//! posts it to the push service, retried with the bus's backoff; a subscription the push
//! service calls gone is removed.
//!
//! A subscription names a URL the server will call, so it is checked like one: `https://`
//! only, no private, loopback or link-local address (neither when it is registered nor,
//! against DNS rebinding, when it is called), unless `push.allow_insecure_endpoints` is on.

mod crypto;
mod endpoint;
mod error;
mod model;
mod notifications;
mod routes;
mod sender;
mod service;
mod subscriptions;
mod vapid;

pub use endpoint::{
    EndpointPolicy, MAX_ENDPOINT_LEN, decode_auth_secret, decode_p256dh, is_public_address,
};
pub use error::PushError;
pub use model::{
    Actor, Notice, Notification, NotificationKind, NotificationPage, UnreadCount, Urgency,
};
pub use routes::{
    ReadRequest, SubscriptionCreated, SubscriptionKeys, SubscriptionRequest, VapidKey, routes,
};
pub use sender::{GROUP, QUEUED_TOPIC};
pub use service::PushService;
pub use subscriptions::MAX_SUBSCRIPTIONS_PER_USER;

use std::sync::Arc;

use matsuri_db::{Migration, MigrationSet};

/// Push as the server composes it: the `push` and `notifications` routes, the consumer
/// that sends queued pushes, and the pruning of old notice records.
pub struct PushModule(pub Arc<PushService>);

impl matsuri_module::Module for PushModule {
    fn name(&self) -> &'static str {
        "push"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("push", "Web Push and notifications"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.0.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        vec![sender::subscription(self.0.clone())]
    }

    fn spawn_jobs(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![tokio::spawn(self.0.clone().run_pruning(stop.clone()))]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "push",
    migrations: &[
        Migration {
            version: 1,
            name: "push subscriptions, notifications",
            sql: include_str!("../migrations/0001_push.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 2,
            name: "notification position sequence",
            sql: include_str!("../migrations/0002_notification_position_seq.sqlite.sql"),
            postgres_sql: Some(include_str!(
                "../migrations/0002_notification_position_seq.postgres.sql"
            )),
        },
    ],
};
