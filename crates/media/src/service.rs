//! The media service: what the routes, the worker and the sweeper share — the two blob
//! stores (originals and variants apart), the signing key of the folder's upload URLs,
//! the bounded pool of image workers, and the settings.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

use matsuri_blob::Blobs;
use matsuri_bus::Nudge;
use matsuri_coord::SharedCoord;
use matsuri_core::config::MediaSettings;
use matsuri_core::{Settings, SharedClock};
use matsuri_db::Db;

/// The topic of completed uploads, which the worker turns into variants.
pub const UPLOADED_TOPIC: &str = "image.uploaded";
/// The topic of deleted images, whose objects the cleaner removes.
pub const DELETED_TOPIC: &str = "image.deleted";

pub struct MediaService {
    pub(crate) db: Db,
    pub(crate) clock: SharedClock,
    pub(crate) coord: SharedCoord,
    pub(crate) originals: Blobs,
    pub(crate) variants: Blobs,
    pub(crate) settings: MediaSettings,
    pub(crate) signer: Hmac<Sha256>,
    /// Images decoded at once on this node: each holds one permit while it runs.
    pub(crate) pool: Arc<Semaphore>,
    pub(crate) nudge: Nudge,
}

impl MediaService {
    /// Opens the stores named by the settings; `secret` signs the folder's upload URLs.
    pub fn new(
        db: Db,
        coord: SharedCoord,
        clock: SharedClock,
        settings: &Settings,
        secret: &[u8],
        nudge: Nudge,
    ) -> anyhow::Result<Arc<Self>> {
        let originals = Blobs::open(&settings.originals_url())?;
        let variants = Blobs::open(&settings.variants_url())?;
        // HMAC takes a key of any length, so the fallback is never used.
        let mut signer = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        signer.update(b"matsuri upload ");
        let workers = match settings.media.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Ok(Arc::new(Self {
            db,
            clock,
            coord,
            originals,
            variants,
            settings: settings.media.clone(),
            signer,
            pool: Arc::new(Semaphore::new(workers)),
            nudge,
        }))
    }

    /// Whether both stores answer, for readiness checks.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.originals.ping().await?;
        self.variants.ping().await
    }

    /// Where a browser goes beyond this server for images: the origins it uploads to
    /// (the bucket on S3, the public base) and those it loads variants from (the public
    /// base, the redirect target), for the pages' policy.
    pub fn browser_origins(&self) -> (Vec<String>, Vec<String>) {
        let origin = |url: &str| {
            url::Url::parse(url)
                .ok()
                .map(|u| u.origin())
                .filter(url::Origin::is_tuple)
                .map(|o| o.ascii_serialization())
        };
        let base = origin(&self.settings.public_base_url);
        let bucket = self.originals.direct_url("").and_then(|u| origin(&u));
        let redirect = self
            .settings
            .variants_redirect_url
            .as_deref()
            .and_then(origin);
        let connect = bucket.into_iter().chain(base.clone()).collect();
        let images = base.into_iter().chain(redirect).collect();
        (connect, images)
    }

    /// The public URL of a path this server answers (`/images/…`), before which
    /// `media.public_base_url` goes.
    pub(crate) fn public_url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.settings.public_base_url.trim_end_matches('/')
        )
    }

    /// Where an image's variant is kept in the variants store.
    pub(crate) fn variant_key(image_id: &str, name: &str) -> String {
        format!("{image_id}/{name}.webp")
    }
}
