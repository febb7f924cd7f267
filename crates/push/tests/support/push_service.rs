//! A Web Push service for tests, playing both ends a push travels between: the push
//! service a subscription's endpoint names (RFC 8030), which verifies the sender's VAPID
//! token (RFC 8292: ES256 against the `k=` key, `aud` the endpoint's origin, `exp` at most
//! 24 hours ahead), and the browser, which decrypts the `aes128gcm` body with its
//! subscription's private key and auth secret (RFC 8291, the receiving side). Each push
//! it reads is recorded with its `TTL` and `Urgency` headers; it answers with the status
//! a test sets (201 until told otherwise). A push it cannot verify or decrypt is refused
//! with 400 and its reason recorded.
//!
//! It listens on `127.0.0.1:0` over plain HTTP, so the server under test needs
//! `push.allow_insecure_endpoints`. It is self-contained (tokio, axum, serde_json, base64,
//! p256, hkdf, aes-gcm, sha2, jsonwebtoken, anyhow): other test crates include it by
//! path, each using the part it needs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// A browser's subscription, as the browser would register it with the server.
#[derive(Debug, Clone)]
pub struct TestSubscription {
    pub endpoint: String,
    /// The browser's public key, base64url.
    pub p256dh: String,
    /// The browser's auth secret, base64url.
    pub auth: String,
}

/// A push the service read, verified and decrypted.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The endpoint it was sent to.
    pub endpoint: String,
    /// The decrypted message, as JSON.
    pub payload: serde_json::Value,
    pub ttl: Option<String>,
    pub urgency: Option<String>,
    /// The `k=` of the VAPID header: the sender's application server key.
    pub vapid_key: String,
    /// The VAPID token's claims (`aud`, `exp`, `sub`), after its signature checked out.
    pub claims: serde_json::Value,
    /// The status the service answered with.
    pub status: u16,
}

/// The browser side of one subscription.
struct Browser {
    endpoint: String,
    secret: SecretKey,
    public: Vec<u8>,
    auth: [u8; 16],
}

#[derive(Default)]
struct Record {
    /// Every push read, whatever it was answered.
    attempts: Vec<Delivery>,
    /// Why each push that could not be read was refused.
    refusals: Vec<String>,
}

struct Shared {
    origin: String,
    status: AtomicU16,
    browsers: Mutex<HashMap<String, Browser>>,
    record: Mutex<Record>,
    /// Bumped on every request, for the waiters.
    seen: tokio::sync::watch::Sender<usize>,
}

/// The running service; stops when dropped.
pub struct TestPushService {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestPushService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestPushService {
    /// Starts the service on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            origin,
            status: AtomicU16::new(201),
            browsers: Mutex::new(HashMap::new()),
            record: Mutex::new(Record::default()),
            seen: tokio::sync::watch::Sender::new(0),
        });
        let app = axum::Router::new()
            .route("/push/{token}", axum::routing::post(receive))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, server })
    }

    /// A new browser: a fresh P-256 key pair and auth secret, and an endpoint of its own.
    pub fn subscribe(&self) -> anyhow::Result<TestSubscription> {
        let secret = SecretKey::try_generate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let auth = <[u8; 16]>::try_generate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let public = secret.public_key().to_sec1_point(false).as_bytes().to_vec();
        let token =
            URL_SAFE_NO_PAD.encode(<[u8; 12]>::try_generate().map_err(|e| anyhow::anyhow!("{e}"))?);
        let endpoint = format!("{}/push/{token}", self.shared.origin);
        let subscription = TestSubscription {
            endpoint: endpoint.clone(),
            p256dh: URL_SAFE_NO_PAD.encode(&public),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        lock(&self.shared.browsers).insert(
            token,
            Browser {
                endpoint,
                secret,
                public,
                auth,
            },
        );
        Ok(subscription)
    }

    /// The origin pushes must name as their VAPID audience.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// Answers every push from now on with `status` (201, or 410, 500, ...).
    pub fn answer_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// The pushes answered with a 2xx, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.record)
            .attempts
            .iter()
            .filter(|d| (200..300).contains(&d.status))
            .cloned()
            .collect()
    }

    /// Every push read, whatever it was answered.
    pub fn attempts(&self) -> Vec<Delivery> {
        lock(&self.shared.record).attempts.clone()
    }

    /// Why the pushes that could not be verified or decrypted were refused.
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.shared.record).refusals.clone()
    }

    /// Waits until `n` pushes have been delivered (answered 2xx), at most `timeout`;
    /// answers them.
    pub async fn wait_for_deliveries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        self.wait_until(timeout, |record| {
            record
                .attempts
                .iter()
                .filter(|d| (200..300).contains(&d.status))
                .count()
                >= n
        })
        .await?;
        Ok(self.deliveries())
    }

    /// Waits until `n` pushes have been read, whatever they were answered, at most
    /// `timeout`; answers them.
    pub async fn wait_for_attempts(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        self.wait_until(timeout, |record| record.attempts.len() >= n)
            .await?;
        Ok(self.attempts())
    }

    async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<()> {
        let mut seen = self.shared.seen.subscribe();
        let waiting = async {
            loop {
                if done(&lock(&self.shared.record)) {
                    return Ok(());
                }
                if seen.changed().await.is_err() {
                    anyhow::bail!("the test push service stopped");
                }
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(result) => result,
            Err(_) => {
                let record = lock(&self.shared.record);
                anyhow::bail!(
                    "timed out after {timeout:?}: {} pushes read, refused: {:?}",
                    record.attempts.len(),
                    record.refusals
                )
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status =
        StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::CREATED);
    let read = read_push(&shared, &token, &headers, &body);
    let answer = match read {
        Ok(mut delivery) => {
            delivery.status = status.as_u16();
            lock(&shared.record).attempts.push(delivery);
            status
        }
        Err((answer, reason)) => {
            lock(&shared.record).refusals.push(format!("{reason:#}"));
            answer
        }
    };
    shared.seen.send_modify(|n| *n += 1);
    answer
}

/// Verifies and decrypts one push, as the push service and the browser would.
fn read_push(
    shared: &Shared,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, (StatusCode, anyhow::Error)> {
    let refuse = |e: anyhow::Error| (StatusCode::BAD_REQUEST, e);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let browsers = lock(&shared.browsers);
    let Some(browser) = browsers.get(token) else {
        return Err((
            StatusCode::NOT_FOUND,
            anyhow::anyhow!("no subscription {token}"),
        ));
    };
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return Err(refuse(anyhow::anyhow!("Content-Encoding is not aes128gcm")));
    }
    if header("content-type").as_deref() != Some("application/octet-stream") {
        return Err(refuse(anyhow::anyhow!(
            "Content-Type is not application/octet-stream"
        )));
    }
    let ttl = header("ttl");
    if ttl.as_deref().and_then(|t| t.parse::<u64>().ok()).is_none() {
        return Err(refuse(anyhow::anyhow!("no TTL header of whole seconds")));
    }
    let authorization = header("authorization").unwrap_or_default();
    let (vapid_key, claims) = verify_vapid(&authorization, &shared.origin).map_err(refuse)?;
    let plaintext = decrypt(browser, body).map_err(refuse)?;
    let payload = serde_json::from_slice(&plaintext)
        .map_err(|e| refuse(anyhow::anyhow!("the message is not JSON: {e}")))?;
    Ok(Delivery {
        endpoint: browser.endpoint.clone(),
        payload,
        ttl,
        urgency: header("urgency"),
        vapid_key,
        claims,
        status: 0,
    })
}

/// Checks `vapid t=<JWT>, k=<key>`: an ES256 signature by `k`, `aud` the origin, `exp`
/// in the future and at most 24 hours away, a `sub`. Answers `k` and the claims.
fn verify_vapid(authorization: &str, origin: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let params = authorization
        .strip_prefix("vapid ")
        .ok_or_else(|| anyhow::anyhow!("the Authorization scheme is not vapid"))?;
    let mut token = None;
    let mut key = None;
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", value)) => token = Some(value),
            Some(("k", value)) => key = Some(value),
            _ => anyhow::bail!("unexpected VAPID parameter {param:?}"),
        }
    }
    let (Some(token), Some(key)) = (token, key) else {
        anyhow::bail!("the VAPID header needs t= and k=");
    };
    let point = URL_SAFE_NO_PAD.decode(key)?;
    anyhow::ensure!(
        point.len() == 65 && point[0] == 4,
        "k= is not an uncompressed P-256 point"
    );
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
        .map_err(|e| anyhow::anyhow!("the VAPID token does not verify: {e}"))?
        .claims;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let exp = claims["exp"].as_u64().unwrap_or_default();
    anyhow::ensure!(
        exp <= now + 24 * 3_600,
        "the VAPID token expires more than 24 hours from now"
    );
    Ok((key.to_owned(), claims))
}

/// RFC 8291 and RFC 8188 from the browser's side: the header's salt and sender key, the
/// shared secret with the subscription's private key, the same key derivation, and one
/// record whose last plaintext byte (before any zero padding) is the delimiter 2.
fn decrypt(browser: &Browser, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(body.len() > 21, "the body is shorter than its header");
    let salt = &body[..16];
    let record_size = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let key_len = usize::from(body[20]);
    anyhow::ensure!(key_len == 65, "the key id is not a 65-byte P-256 point");
    let sender = body
        .get(21..21 + key_len)
        .ok_or_else(|| anyhow::anyhow!("the body is shorter than its header"))?;
    let ciphertext = &body[21 + key_len..];
    anyhow::ensure!(
        ciphertext.len() <= record_size,
        "the message does not fit one record"
    );
    let sender = PublicKey::from_sec1_bytes(sender)
        .map_err(|_| anyhow::anyhow!("the sender key is not a P-256 point"))?;
    let shared = browser.secret.diffie_hellman(&sender);

    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&browser.public);
    key_info.extend_from_slice(sender.to_sec1_point(false).as_bytes());
    let mut ikm = [0_u8; 32];
    Hkdf::<Sha256>::new(Some(&browser.auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| anyhow::anyhow!("HKDF"))?;
    let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0_u8; 16];
    let mut nonce = [0_u8; 12];
    content
        .expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|()| content.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|_| anyhow::anyhow!("HKDF"))?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| anyhow::anyhow!("AES key"))?;
    let mut record = cipher
        .decrypt(&Nonce::from(nonce), ciphertext)
        .map_err(|_| anyhow::anyhow!("the message does not decrypt"))?;
    while record.last() == Some(&0) {
        record.pop();
    }
    anyhow::ensure!(
        record.pop() == Some(2),
        "the record does not end with the last-record delimiter"
    );
    Ok(record)
}
