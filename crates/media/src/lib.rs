//! Media (seed 001 §1): images uploaded straight to the blob store with a presigned URL,
//! checked on complete, turned into WebP variants by a bounded worker pool
//! (`matsuri-imaging`), and served under URLs a CDN may cache for a year.

mod images;
mod model;
mod routes;
mod service;
mod sweep;
mod uploads;
mod worker;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use matsuri_db::{Migration, MigrationSet};

pub use images::Servable;
pub use model::{
    Accepted, FormatName, Image, ImagePatch, ImageQuery, ImageStatus, MAX_FILENAME, MAX_TAG,
    MAX_TAGS, MAX_TITLE, MediaError, NewUpload, Tag, UploadTicket, VARIANT_NAMES, VariantView,
};
pub use service::{DELETED_TOPIC, MediaService, UPLOADED_TOPIC};
pub use uploads::PutRefused;
pub use worker::{CLEANUP_GROUP, Deleted, GROUP, Job, Outcome};

/// Media as the server composes it: the upload and image routes, the variant and upload
/// endpoints at the root, the worker and the cleaner, and the sweeper.
pub struct MediaModule(pub Arc<MediaService>);

impl matsuri_module::Module for MediaModule {
    fn name(&self) -> &'static str {
        "media"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("media", "Image uploads and their variants"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes::routes(self.0.clone())
    }

    fn root_routes(&self) -> axum::Router {
        routes::root_routes(self.0.clone())
    }

    fn subscriptions(&self) -> Vec<matsuri_bus::Subscription> {
        vec![
            matsuri_bus::Subscription::new(
                UPLOADED_TOPIC,
                GROUP,
                Arc::new(worker::Worker(self.0.clone())),
            ),
            matsuri_bus::Subscription::new(
                DELETED_TOPIC,
                CLEANUP_GROUP,
                Arc::new(worker::Cleaner(self.0.clone())),
            ),
        ]
    }

    fn spawn_jobs(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(sweep::sweeping(self.0.clone(), stop.clone()))]
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "media",
    migrations: &[Migration {
        version: 1,
        name: "uploads, images, image tags",
        sql: include_str!("../migrations/0001_media.sql"),
        postgres_sql: None,
    }],
};
