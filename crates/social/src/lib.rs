//! Social (seed 000 §2): posts, likes with a count that always equals the likes, and the
//! author told of each first like (gathered per post while unread) live or by Web Push.

mod likes;
mod notify;
mod routes;
mod service;

use std::sync::Arc;

use matsuri_db::{Migration, MigrationSet};
use matsuri_realtime::Realtime;

pub use notify::{GROUP, LikeNotifier};
pub use service::{
    DELETED_TOPIC, LIKED_TOPIC, LikeState, Liked, Liker, Person, Post, SocialError, SocialService,
};

/// Social as the server composes it: the `posts` routes and the notifying consumer.
pub struct SocialModule {
    social: Arc<SocialService>,
    realtime: Arc<Realtime>,
    notifier: Arc<dyn LikeNotifier>,
}

impl SocialModule {
    pub fn new(
        social: Arc<SocialService>,
        realtime: Arc<Realtime>,
        notifier: Arc<dyn LikeNotifier>,
    ) -> Self {
        Self {
            social,
            realtime,
            notifier,
        }
    }
}

impl matsuri_module::Module for SocialModule {
    fn name(&self) -> &'static str {
        "social"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("social", "Posts and likes"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes::routes(self.social.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        let notify: Arc<notify::Notify> = Arc::new(notify::Notify {
            social: self.social.clone(),
            realtime: self.realtime.clone(),
            notifier: self.notifier.clone(),
        });
        vec![
            matsuri_bus::Subscription::new(LIKED_TOPIC, GROUP, notify.clone()),
            matsuri_bus::Subscription::new(DELETED_TOPIC, GROUP, notify),
        ]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "social",
    migrations: &[
        Migration {
            version: 1,
            name: "posts, likes, like notices",
            sql: include_str!("../migrations/0001_social.sql"),
            postgres_sql: None,
        },
        Migration {
            version: 2,
            name: "likes without a foreign key to their post",
            sql: include_str!("../migrations/0002_likes_without_post_key.sqlite.sql"),
            postgres_sql: Some(include_str!(
                "../migrations/0002_likes_without_post_key.postgres.sql"
            )),
        },
    ],
};
