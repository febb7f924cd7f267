//! The one face a domain crate shows the server (`architecture.md` §2): its routes with
//! their OpenAPI paths and tag, its bus subscriptions, its scheduled jobs, what runs
//! beside the HTTP server on every node, and what it does when the server starts to
//! drain; and the `Idempotency-Key` sequence its routes share ([`idempotency`]). The
//! server composes the running system from a list of modules
//! (`crates/server/src/components.rs`), so adding a domain is one entry there and one for
//! its `MIGRATIONS` beside the others (migrations run before any service is built, so
//! they are a crate's static, not part of this face).

pub mod idempotency;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use matsuri_bus::Subscription;

/// Who the accounts are, for a domain that shows people (chat members, post authors):
/// the port accounts fill in, so that no domain reads another's tables.
#[async_trait::async_trait]
pub trait People: Send + Sync {
    /// The display name of each id that is an account; others are left out.
    async fn names(
        &self,
        ids: &[String],
    ) -> anyhow::Result<std::collections::HashMap<String, String>>;
}

/// Which images may be attached, for a domain that shows them (posts): the port media
/// fills in.
#[async_trait::async_trait]
pub trait Pictures: Send + Sync {
    /// Whether `image_id` is an image of `owner` whose variants are ready.
    async fn attachable(&self, owner: &str, image_id: &str) -> anyhow::Result<bool>;
}

/// What a user did, as the recommender hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    View,
    Search,
    CartAdd,
    Purchase,
}

impl ActivityKind {
    /// The kind's name in the API: `view`, `search`, `cart_add`, `purchase`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::View => "view",
            ActivityKind::Search => "search",
            ActivityKind::CartAdd => "cart_add",
            ActivityKind::Purchase => "purchase",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "view" => Some(ActivityKind::View),
            "search" => Some(ActivityKind::Search),
            "cart_add" => Some(ActivityKind::CartAdd),
            "purchase" => Some(ActivityKind::Purchase),
            _ => None,
        }
    }
}

/// Where a domain reports what users do (the shop's views, cart adds and purchases): the
/// port recs fills in. Recording never waits on the database; under overload an event
/// may be dropped rather than slow the request down.
pub trait Activity: Send + Sync {
    fn record(
        &self,
        user_id: &str,
        kind: ActivityKind,
        product_id: Option<&str>,
        query: Option<&str>,
    );
}

/// A product as a domain that shows products (recommendations) needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: String,
    pub price: i64,
}

/// Product names and prices: the port the shop fills in.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync {
    /// The entry of each id that is a product; others are left out.
    async fn entries(
        &self,
        ids: &[String],
    ) -> anyhow::Result<std::collections::HashMap<String, CatalogEntry>>;
}

/// A domain as the server sees it. Every method has a default, so a module says only
/// what it has.
pub trait Module: Send + Sync {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// The OpenAPI tag of its routes: name and description.
    fn tag(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// Its HTTP routes, relative to `/api/v1`, with their OpenAPI paths.
    fn routes(&self) -> OpenApiRouter {
        OpenApiRouter::new()
    }

    /// Its routes at the root, outside `/api/v1` and the OpenAPI document: what a browser
    /// or a CDN fetches by URL (image variants, the file store's signed uploads).
    fn root_routes(&self) -> axum::Router {
        axum::Router::new()
    }

    /// Its consumer groups. The server applies the bus settings (attempts, deadline) of
    /// each group.
    fn subscriptions(&self) -> Vec<Subscription> {
        Vec::new()
    }

    /// Starts its scheduled jobs; each ends when `stop` is cancelled.
    fn spawn_jobs(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let _ = stop;
        Vec::new()
    }

    /// Starts what must run on every node that serves HTTP, workers or not (the realtime
    /// gateway's pub/sub listener and heartbeat); each ends when `stop` is cancelled.
    fn spawn_serving(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let _ = stop;
        Vec::new()
    }

    /// Called once when the server stops accepting connections, before in-flight
    /// requests drain: answer what is being held open (long polls, streams).
    fn draining(&self) {}
}
