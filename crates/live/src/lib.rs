//! Live comments (seed 001 §3): rooms on air, comments checked against a per-user rate
//! limit and a spam filter (NG words, repeats, a trained classifier), stored in batches,
//! paced out to every viewer over the realtime gateway (or a server-sent event stream),
//! liked and ranked, moderated, and kept as an archive to replay in time with the video.
//!
//! A comment that passes is committed with its `live.comments` event ([`writer`]); the
//! broadcast consumer ([`broadcast`]) hands it to the [`stage`], which sends each room's
//! share per tick to the room's topic, on every node.

mod archive;
mod broadcast;
mod comments;
mod likes;
mod model;
mod moderation;
mod rooms;
mod routes;
mod service;
mod sse;
mod stage;
mod training;
mod writer;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use matsuri_db::{Migration, MigrationSet};

pub use model::{
    Ban, Comment, CommentLikes, Commenter, Held, LiveError, MAX_COMMENT, Moderation, Posted, Room,
    RoomStatus, SpamReason,
};
pub use rooms::topic;
pub use service::LiveService;
pub use training::{TrainReport, train};
pub use writer::COMMENTS_TOPIC;

/// The consumer group that sends stored comments to the viewers.
pub const BROADCAST_GROUP: &str = "live-broadcast";

/// Live comments as the server composes them.
pub struct LiveModule(pub Arc<LiveService>);

impl matsuri_module::Module for LiveModule {
    fn name(&self) -> &'static str {
        "live"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("live", "Live rooms, comments, likes, moderation, archive"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes::routes(self.0.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        vec![matsuri_bus::Subscription::new(
            COMMENTS_TOPIC,
            BROADCAST_GROUP,
            Arc::new(broadcast::Broadcast(self.0.clone())),
        )]
    }

    fn spawn_jobs(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let mut jobs: Vec<JoinHandle<()>> = self.0.stage.start(stop).into_iter().collect();
        jobs.push(tokio::spawn(training::nightly(
            self.0.clone(),
            stop.clone(),
        )));
        jobs
    }

    fn spawn_serving(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let mut jobs: Vec<JoinHandle<()>> = self.0.stage.start(stop).into_iter().collect();
        jobs.push(tokio::spawn(training::reloading(
            self.0.clone(),
            stop.clone(),
        )));
        jobs
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "live",
    migrations: &[Migration {
        version: 1,
        name: "rooms, comments, likes, bans, spam models",
        sql: include_str!("../migrations/0001_live.sql"),
        postgres_sql: None,
    }],
};
