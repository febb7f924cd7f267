//! Typed settings, layered: built-in defaults → `matsuri.toml` → `MATSURI_*` environment
//! variables (`__` separates nested keys, e.g. `MATSURI_AUTH__TOKEN_TTL_SECONDS`) → command
//! line flags. Every role of the binary reads the same settings.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value: never printed, never logged, shown as `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Where the SQLite file, blobs and mail files live by default.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/matsuri.db`.
    pub database_url: Option<Secret>,
    /// `memory://` or `redis://…`.
    pub coord_url: String,
    /// With Redis: every key is stored under `<coord_prefix>:`.
    pub coord_prefix: String,
    /// `db` (the SQL outbox) or `nats://…`.
    pub bus_url: String,
    /// `file://…` or `s3://…`; defaults to `file://<data_dir>/blobs`.
    pub blob_url: Option<String>,
    /// `file://…` (`.eml` files) or `smtp://host:port`; defaults to `file://<data_dir>/mail`.
    pub mail_url: Option<Secret>,
    /// Seed a demo catalog and users at start.
    #[serde(deserialize_with = "flag")]
    pub demo: bool,
    /// Run the event consumers and scheduled jobs inside `serve` (off when separate
    /// `worker` processes run them).
    #[serde(deserialize_with = "flag")]
    pub workers: bool,
    /// With `admin_password`: the staff user created at start if absent.
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub auth: AuthSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub payments: PaymentSettings,
    pub shop: ShopSettings,
    pub inventory: InventorySettings,
    pub tickets: TicketSettings,
    pub mail: MailSettings,
    pub push: PushSettings,
    pub realtime: RealtimeSettings,
    pub live: LiveSettings,
    pub media: MediaSettings,
    pub recs: RecsSettings,
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            coord_url: "memory://".into(),
            coord_prefix: "matsuri".into(),
            bus_url: "db".into(),
            blob_url: None,
            mail_url: None,
            demo: false,
            workers: true,
            admin_email: None,
            admin_password: None,
            auth: AuthSettings::default(),
            bus: BusSettings::default(),
            database: DatabaseSettings::default(),
            http: HttpSettings::default(),
            payments: PaymentSettings::default(),
            shop: ShopSettings::default(),
            inventory: InventorySettings::default(),
            tickets: TicketSettings::default(),
            mail: MailSettings::default(),
            push: PushSettings::default(),
            realtime: RealtimeSettings::default(),
            live: LiveSettings::default(),
            media: MediaSettings::default(),
            recs: RecsSettings::default(),
            log: LogSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HMAC secret for tokens. When unset, one is generated and kept in
    /// `<data_dir>/token-secret`; set it explicitly when several nodes share a database.
    pub token_secret: Option<Secret>,
    pub token_ttl_seconds: u64,
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_secret: None,
            token_ttl_seconds: 12 * 3600,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BusSettings {
    /// Attempts before a delivery goes to the dead letters.
    pub max_attempts: i64,
    /// Per consumer group overrides of `max_attempts`, e.g. `notification = 5`.
    pub group_max_attempts: std::collections::BTreeMap<String, i64>,
    /// A handler running longer than this has failed.
    pub handler_deadline_seconds: u64,
    /// With `bus_url = "nats://…"`: names the JetStream stream (`<PREFIX>_EVENTS`) and
    /// its subjects (`<prefix>.<topic>`), so deployments can share a NATS server.
    pub nats_prefix: String,
    /// Handled events, and the record of which consumer applied them, are deleted after
    /// this many hours; parked and dead ones stay until handled or deleted.
    pub retention_hours: u64,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            group_max_attempts: std::collections::BTreeMap::new(),
            handler_deadline_seconds: 30,
            nats_prefix: "matsuri".into(),
            retention_hours: 7 * 24,
        }
    }
}

impl BusSettings {
    pub fn max_attempts_of(&self, group: &str) -> i64 {
        self.group_max_attempts
            .get(group)
            .copied()
            .unwrap_or(self.max_attempts)
            .max(1)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Pool size on PostgreSQL; the number of reader connections on SQLite (which has one
    /// writer).
    pub max_connections: u32,
    /// How long SQLite waits for a lock before giving up.
    pub busy_timeout_ms: u64,
    /// How long a request waits for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: a streaming replica for reads that may be a moment behind (seat maps,
    /// event lists, catalog pages).
    pub replica_url: Option<Secret>,
    /// How far behind the replica may be before its reads go to the primary.
    pub replica_max_lag_ms: u64,
    /// How often the replica's lag is looked at.
    pub replica_check_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            busy_timeout_ms: 5_000,
            acquire_timeout_ms: 30_000,
            replica_url: None,
            replica_max_lag_ms: 1_000,
            replica_check_ms: 250,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// A request still running after this long is answered 408.
    pub request_timeout_seconds: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_seconds: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentSettings {
    /// Latency of every simulated charge.
    pub latency_ms: u64,
    /// Latency of `tok_slow` charges.
    pub slow_latency_ms: u64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            slow_latency_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ShopSettings {
    /// Where the shop's copy of every order mail goes.
    pub notify_email: String,
    /// How often the recovery sweep looks for orders left `pending_payment`.
    pub recovery_interval_seconds: u64,
    /// How old a pending order must be before the sweep settles it; longer than any
    /// gateway call.
    pub recovery_grace_seconds: u64,
    /// Most units of one product in one cart line or order line.
    pub max_line_quantity: i64,
    /// Most lines in one order.
    pub max_order_lines: usize,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            notify_email: "shop@matsuri.localhost".into(),
            recovery_interval_seconds: 30,
            recovery_grace_seconds: 60,
            max_line_quantity: 100,
            max_order_lines: 50,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InventorySettings {
    /// The store whose stock the online shop sells.
    pub online_store: String,
    /// Every store the imports may name; the online store among them.
    pub stores: Vec<String>,
    /// How often the sync sets the allocation store from the ledger.
    pub sync_interval_ms: u64,
    /// How long an order's delta holds its units before they come back at a sync; longer
    /// than any checkout and the recovery sweep's grace.
    pub delta_ttl_seconds: u64,
    /// The largest CSV import accepted.
    pub max_import_bytes: u64,
    /// How often each marketplace channel is pulled and its listing adjusted.
    pub channel_interval_ms: u64,
    /// Units held back from each channel's share, for the shop.
    pub channel_buffer: u64,
    /// How long a request to a marketplace may take.
    pub channel_timeout_ms: u64,
}

impl Default for InventorySettings {
    fn default() -> Self {
        Self {
            online_store: "main".into(),
            stores: vec!["main".into()],
            sync_interval_ms: 2_000,
            delta_ttl_seconds: 3_600,
            max_import_bytes: 128 << 20,
            channel_interval_ms: 1_000,
            channel_buffer: 2,
            channel_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RecsSettings {
    /// When the batch runs: `minute hour * * *` (cron-style; day fields must be `*`).
    pub schedule: String,
    /// The zone `schedule` is read in: `UTC`, a fixed offset such as `+09:00`, or one of
    /// the zones without daylight saving time the recommender knows (`Asia/Tokyo`, …).
    pub timezone: String,
    /// Days of activity a run reads (purchases are read for the whole retention).
    pub days: u32,
    /// Recommendations kept per user and related items per product.
    pub top_n: usize,
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Neighbours kept per user.
    pub user_neighbours: usize,
    /// Share of the user-user score in a user's recommendations (0 to 1).
    pub user_share: f64,
    /// Added to the denominator of the cosine, so pairs with little overlap count less.
    pub shrinkage: f64,
    /// BM25's term-frequency saturation.
    pub bm25_k1: f64,
    /// BM25's length normalisation (0 to 1).
    pub bm25_b: f64,
    /// Weights of the kinds of activity.
    pub view_weight: f64,
    pub cart_add_weight: f64,
    pub purchase_weight: f64,
    /// Days whose activity the popular items are counted over.
    pub popular_days: u32,
    /// Days of activity kept; older days are deleted by a job.
    pub retention_days: u32,
    /// Events written per statement by the activity log's flusher.
    pub flush_batch: usize,
    /// Events the activity log holds before it drops new ones.
    pub queue_capacity: usize,
    /// How long a run's lease lasts without being renewed.
    pub lease_seconds: u64,
}

impl Default for RecsSettings {
    fn default() -> Self {
        Self {
            schedule: "0 2 * * *".into(),
            timezone: "Asia/Tokyo".into(),
            days: 7,
            top_n: 20,
            neighbours: 50,
            user_neighbours: 30,
            user_share: 0.3,
            shrinkage: 10.0,
            bm25_k1: 1.2,
            bm25_b: 0.75,
            view_weight: 1.0,
            cart_add_weight: 3.0,
            purchase_weight: 5.0,
            popular_days: 3,
            retention_days: 30,
            flush_batch: 500,
            queue_capacity: 65_536,
            lease_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketSettings {
    /// Most seats in one hold.
    pub max_seats_per_hold: usize,
    /// Most holds an admitted user may have at once (each of up to `max_seats_per_hold`).
    pub max_holds_per_admission: i64,
    /// Most seats an event may have.
    pub max_seats_per_event: i64,
    /// How long a hold lasts when the event does not say.
    pub default_hold_seconds: i64,
    /// How many admitted users may shop at once when the event does not say.
    pub default_max_active: i64,
    /// How long an access token from the waiting room is valid.
    pub access_token_ttl_seconds: u64,
    /// How often the admission scheduler lets the next batch in.
    pub admission_interval_ms: u64,
    /// Longest a queue status request asking `Prefer: wait=N` is held; below the HTTP
    /// request timeout.
    pub max_queue_wait_seconds: u64,
    /// Most queue status requests one process holds at once; beyond them a waiting
    /// client is answered at once and told when to ask again.
    pub max_held_queue_requests: usize,
    /// How often the sweeper releases expired holds.
    pub sweep_interval_seconds: u64,
    /// How long after its hold expired a card payment that never finished (a crash
    /// mid-charge) is settled with the gateway; longer than any gateway call.
    pub charge_grace_seconds: i64,
    /// Most yen one wallet charge may add.
    pub max_wallet_charge: i64,
    /// How long one rendering of a seat map (all seats, or the available ones) serves
    /// every request for it (0: every request reads). Holds always decide on the
    /// database, never on the map.
    pub seat_map_max_age_ms: u64,
    /// How often each node sends the seat changes it made to the event's realtime topic
    /// as one `seats` frame (a few a second at most).
    pub seat_frame_interval_ms: u64,
}

impl Default for TicketSettings {
    fn default() -> Self {
        Self {
            max_seats_per_hold: 4,
            max_holds_per_admission: 1,
            max_seats_per_event: 100_000,
            default_hold_seconds: 600,
            default_max_active: 500,
            access_token_ttl_seconds: 600,
            admission_interval_ms: 1_000,
            max_queue_wait_seconds: 20,
            max_held_queue_requests: 5_000,
            sweep_interval_seconds: 5,
            charge_grace_seconds: 60,
            max_wallet_charge: 1_000_000,
            seat_map_max_age_ms: 250,
            seat_frame_interval_ms: 250,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    pub from: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "matsuri <no-reply@matsuri.localhost>".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PushSettings {
    /// Accept `http://` endpoints and private, loopback or link-local addresses (for
    /// local testing only: otherwise a subscription could make the server call into
    /// its own network).
    #[serde(deserialize_with = "flag")]
    pub allow_insecure_endpoints: bool,
    /// The VAPID private key (PKCS#8 DER, base64url); generated into the data dir when
    /// absent. Every node of a deployment must share it.
    pub vapid_private_key: Option<Secret>,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push services.
    pub subject: String,
    /// How long a push service keeps an undelivered message (the `TTL` header).
    pub ttl_seconds: u64,
    /// How long one send to a push service may take.
    pub request_timeout_ms: u64,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            allow_insecure_endpoints: false,
            vapid_private_key: None,
            subject: "mailto:ops@matsuri.localhost".into(),
            ttl_seconds: 24 * 3_600,
            request_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RealtimeSettings {
    /// Frames waiting for one socket; a reader this far behind is closed with 1013.
    pub send_queue: usize,
    /// How often the server pings a socket.
    pub ping_interval_seconds: u64,
    /// A socket silent this long is dropped.
    pub idle_timeout_seconds: u64,
    /// A frame the peer does not take this long closes the socket with 1013.
    pub write_timeout_ms: u64,
    /// How long a node's entry in the connection registry lives without a heartbeat.
    pub presence_ttl_seconds: u64,
    /// Sockets one node accepts; more are refused with 503.
    pub max_connections: usize,
    /// Where frames cross between nodes: `local://` (one node) or `redis://…`; by
    /// default the `coord` Redis when there is one, else `local://`.
    pub pubsub_url: Option<Secret>,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            send_queue: 256,
            ping_interval_seconds: 25,
            idle_timeout_seconds: 60,
            write_timeout_ms: 10_000,
            presence_ttl_seconds: 90,
            max_connections: 100_000,
            pubsub_url: None,
        }
    }
}

/// Live comments (`live`): what every room shares; each room's own limits are set by
/// its moderators.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveSettings {
    /// NG words refused in every room, matched on normalised text.
    pub ng_words: Vec<String>,
    /// Innocent words that contain an NG word (「ディナーナイフ」 for 「ナイフ」).
    pub ng_allowed: Vec<String>,
    /// The same text from the same user again within this long is a repeat.
    pub repeat_window_seconds: u64,
    /// How often the frames gathered for a room go out.
    pub tick_ms: u64,
    /// How long a node trusts what it read of a room (status, limits, bans).
    pub room_cache_ms: u64,
    /// How often a node looks for a newer spam model.
    pub model_reload_seconds: u64,
    /// How often the workers train a new spam model from the moderators' decisions
    /// (0: never; `matsuri batch train-spam` trains on demand).
    pub train_every_hours: u64,
    /// Comments written per transaction at most.
    pub write_batch: usize,
    /// A comment that reaches this many likes is sent to every viewer of its room, also
    /// those whose sample left it out (0: never).
    pub highlight_likes: i64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            ng_words: Vec::new(),
            ng_allowed: Vec::new(),
            repeat_window_seconds: 60,
            tick_ms: 100,
            room_cache_ms: 1_000,
            model_reload_seconds: 30,
            train_every_hours: 24,
            write_batch: 512,
            highlight_likes: 10,
        }
    }
}

/// Images (`media`): where originals and variants are kept, how uploads are signed and how
/// variants are served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaSettings {
    /// Where originals go; defaults to `<blob_url>/originals`.
    pub originals_url: Option<String>,
    /// Where variants go, apart from the originals; defaults to `<blob_url>/variants`.
    pub variants_url: Option<String>,
    /// Put before every variant and upload URL matsuri makes (`https://cdn.example.com`),
    /// so that a CDN can front `/images/…`; empty: URLs relative to this server.
    pub public_base_url: String,
    /// When set, `GET /images/{id}/{variant}.webp` redirects to `<this>/<id>/<variant>.webp`
    /// (the variants bucket or a CDN in front of it) instead of answering with the bytes.
    pub variants_redirect_url: Option<String>,
    /// How long an upload URL is good for.
    pub upload_url_seconds: u64,
    /// Upload URLs one user may ask for per minute.
    pub uploads_per_minute: u32,
    /// Images processed at once on a node; 0: one per CPU core.
    pub workers: usize,
    /// An upload neither completed nor refused is removed (with what was put) this long
    /// after its URL expired.
    pub abandoned_upload_hours: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            originals_url: None,
            variants_url: None,
            public_base_url: String::new(),
            variants_redirect_url: None,
            upload_url_seconds: 900,
            uploads_per_minute: 30,
            workers: 0,
            abandoned_upload_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,matsuri_shop=debug`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Settings {
    /// Resolves the layers. `file` is the TOML file to read (`matsuri.toml` when `None`,
    /// skipped if missing); `flags` are the command line values that were given.
    pub fn load(
        file: Option<&Path>,
        flags: impl Serialize,
    ) -> Result<Settings, Box<figment::Error>> {
        let file = file.map_or_else(|| PathBuf::from("matsuri.toml"), Path::to_path_buf);
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("MATSURI_").split("__"))
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(Box::new)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("matsuri.db").display()),
        }
    }

    pub fn mail_url(&self) -> String {
        match &self.mail_url {
            Some(url) => url.expose().to_owned(),
            None => format!("file://{}", self.data_dir.join("mail").display()),
        }
    }

    pub fn blob_url(&self) -> String {
        self.blob_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("blobs").display()))
    }

    /// Where originals are kept: `media.originals_url`, else `<blob_url>/originals`.
    pub fn originals_url(&self) -> String {
        self.media
            .originals_url
            .clone()
            .unwrap_or_else(|| child_url(&self.blob_url(), "originals"))
    }

    /// Where variants are kept: `media.variants_url`, else `<blob_url>/variants`.
    pub fn variants_url(&self) -> String {
        self.media
            .variants_url
            .clone()
            .unwrap_or_else(|| child_url(&self.blob_url(), "variants"))
    }

    /// The resolved settings as TOML with every secret shown as `[redacted]`, and the
    /// derived URLs filled in (their passwords redacted).
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = Some(Secret::new(redact_url_password(&self.database_url())));
        shown.mail_url = Some(Secret::new(redact_url_password(&self.mail_url())));
        shown.blob_url = Some(self.blob_url());
        let mut value = match toml::Value::try_from(&shown) {
            Ok(v) => v,
            Err(e) => return format!("# could not render the settings: {e}\n"),
        };
        if let Some(table) = value.as_table_mut() {
            table.insert(
                "database_url".into(),
                toml::Value::String(redact_url_password(&self.database_url())),
            );
            table.insert(
                "mail_url".into(),
                toml::Value::String(redact_url_password(&self.mail_url())),
            );
        }
        toml::to_string_pretty(&value).unwrap_or_default()
    }
}

/// A yes/no setting: `true`/`false`, and from the environment also `1`/`0`, `yes`/`no`,
/// `on`/`off`.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Number(1) => Ok(true),
        Flag::Number(0) => Ok(false),
        Flag::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other:?}"
            ))),
        },
        Flag::Number(n) => Err(serde::de::Error::custom(format!(
            "expected true or false, got {n}"
        ))),
    }
}

/// `url` with `segment` added to its path, before any query: the default place of one
/// kind of object under the blob store's root (`file://data/blobs` →
/// `file://data/blobs/originals`).
pub fn child_url(url: &str, segment: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let joined = format!("{}/{segment}", base.trim_end_matches('/'));
    match query {
        Some(query) => format!("{joined}?{query}"),
        None => joined,
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("[redacted]"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_goes_before_the_query() {
        assert_eq!(
            child_url("file://data/blobs", "originals"),
            "file://data/blobs/originals"
        );
        assert_eq!(
            child_url("s3://b/root/?endpoint=http://127.0.0.1:9000", "variants"),
            "s3://b/root/variants?endpoint=http://127.0.0.1:9000"
        );
        let settings = Settings {
            blob_url: Some("s3://b?region=eu-west-1".into()),
            ..Settings::default()
        };
        assert_eq!(
            settings.originals_url(),
            "s3://b/originals?region=eu-west-1"
        );
        assert_eq!(settings.variants_url(), "s3://b/variants?region=eu-west-1");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let settings = Settings {
            database_url: Some(Secret::new("postgres://app:hunter2@db/matsuri")),
            admin_password: Some(Secret::new("hunter2")),
            ..Settings::default()
        };
        let printed = settings.redacted_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        for (text, expected) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("0", false),
            ("off", false),
        ] {
            let figment = Figment::from(Serialized::defaults(Settings::default())).merge(
                figment::providers::Toml::string(&format!("demo = \"{text}\"")),
            );
            let settings: Settings = figment.extract().unwrap();
            assert_eq!(settings.demo, expected, "{text}");
        }
        let figment = Figment::from(Serialized::defaults(Settings::default())).merge(
            figment::providers::Toml::string("demo = 1\nworkers = false"),
        );
        let settings: Settings = figment.extract().unwrap();
        assert!(settings.demo && !settings.workers);
        let bad = Figment::from(Serialized::defaults(Settings::default()))
            .merge(figment::providers::Toml::string("demo = \"maybe\""));
        assert!(bad.extract::<Settings>().is_err());
    }

    #[test]
    fn derived_urls_follow_the_data_dir() {
        let settings = Settings {
            data_dir: PathBuf::from("/srv/matsuri"),
            ..Settings::default()
        };
        assert_eq!(settings.database_url(), "sqlite:///srv/matsuri/matsuri.db");
        assert_eq!(settings.mail_url(), "file:///srv/matsuri/mail");
    }
}
