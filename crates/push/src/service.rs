//! The push service as a whole: the VAPID identity, the endpoint rules, the HTTP client
//! pushes go out through, and the pruning of old notice records. What it does lives in
//! [`crate::notifications`], [`crate::subscriptions`] and [`crate::sender`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::SharedClock;
use matsuri_core::clock::Millis;
use matsuri_core::config::PushSettings;
use matsuri_db::Db;

use crate::endpoint::EndpointPolicy;
use crate::vapid::Vapid;

/// How long a notice's source id is remembered: far longer than the bus takes to give up
/// on an event.
const SOURCE_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How often old source ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Stored notifications and Web Push; built once per process.
pub struct PushService {
    pub(crate) db: Db,
    pub(crate) clock: SharedClock,
    pub(crate) vapid: Vapid,
    pub(crate) policy: EndpointPolicy,
    pub(crate) http: reqwest::Client,
    pub(crate) subject: String,
    pub(crate) ttl_seconds: u64,
}

impl std::fmt::Debug for PushService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushService")
            .field("public_key", &self.vapid.public_key())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PushService {
    /// Loads or creates the VAPID key pair (the configured key, else
    /// `<data_dir>/vapid-private-key`, generated on the first start with mode 0600) and
    /// builds the HTTP client pushes go out through: no redirects, no proxy, the
    /// configured timeout, and (unless insecure endpoints are allowed) a resolver that
    /// hands out public addresses only.
    pub async fn new(
        db: Db,
        clock: SharedClock,
        settings: &PushSettings,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            settings.subject.starts_with("mailto:") || settings.subject.starts_with("https:"),
            "push.subject must be a mailto: or https: contact"
        );
        let configured = settings.vapid_private_key.clone();
        let dir = data_dir.to_owned();
        let vapid =
            tokio::task::spawn_blocking(move || Vapid::load_or_create(configured.as_ref(), &dir))
                .await??;
        let policy = EndpointPolicy::new(settings.allow_insecure_endpoints);
        if settings.allow_insecure_endpoints {
            tracing::warn!(
                "push.allow_insecure_endpoints is on: subscriptions may name http:// and private addresses"
            );
        }
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_millis(settings.request_timeout_ms.max(1)))
            .user_agent(concat!("matsuri-push/", env!("CARGO_PKG_VERSION")));
        if let Some(resolver) = policy.resolver() {
            http = http.dns_resolver(Arc::new(resolver));
        }
        Ok(Arc::new(Self {
            db,
            clock,
            vapid,
            policy,
            http: http.build()?,
            subject: settings.subject.clone(),
            ttl_seconds: settings.ttl_seconds,
        }))
    }

    /// The VAPID application server key (uncompressed P-256 public point, base64url
    /// without padding), for a browser's `PushManager.subscribe`.
    pub fn public_key(&self) -> &str {
        self.vapid.public_key()
    }

    /// The endpoint rules subscriptions are held to.
    pub fn endpoint_policy(&self) -> EndpointPolicy {
        self.policy
    }

    /// Forgets the source ids of notices applied before `before` (ms); returns how many.
    pub async fn prune(&self, before: Millis) -> anyhow::Result<u64> {
        let deleted = sqlx::query("DELETE FROM notification_sources WHERE created_at < $1")
            .bind(before)
            .execute(self.db.writer())
            .await?
            .rows_affected();
        if deleted > 0 {
            tracing::info!(deleted, "pruned old notice records");
        }
        Ok(deleted)
    }

    /// Runs [`Self::prune`] every hour, keeping a week, until `stop`.
    pub(crate) async fn run_pruning(self: Arc<Self>, stop: CancellationToken) {
        let keep = i64::try_from(SOURCE_RETENTION.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
            let before = self.clock.now_ms().saturating_sub(keep);
            if let Err(e) = self
                .prune(before)
                .instrument(tracing::info_span!("job.push_prune"))
                .await
            {
                tracing::warn!(error = format!("{e:#}"), "pruning notice records failed");
            }
        }
    }
}
