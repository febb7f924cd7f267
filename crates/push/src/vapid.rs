//! The server's VAPID identity (RFC 8292): a P-256 key pair whose public half browsers
//! subscribe with (the application server key) and whose private half signs, for every
//! push, a short-lived ES256 token for the push service's origin. A push service refuses
//! messages to a subscription signed with another key, so the key lives as long as the
//! subscriptions: configured, or generated once into the data dir.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use p256::SecretKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};

use matsuri_core::clock::Millis;
use matsuri_core::config::Secret;

/// The file in the data dir that keeps a generated key.
pub(crate) const KEY_FILE: &str = "vapid-private-key";

/// How long a token is good for; RFC 8292 allows at most 24 hours.
const TOKEN_SECONDS: i64 = 12 * 3_600;

/// The signing key and the application server key that goes with it.
pub(crate) struct Vapid {
    key: SigningKey,
    public_key: String,
}

impl Vapid {
    /// The configured key, else the one kept in `<data_dir>/vapid-private-key`, made there
    /// (mode 0600) on the first start.
    pub(crate) fn load_or_create(
        configured: Option<&Secret>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            return Self::decode(secret.expose()).context("push.vapid_private_key");
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return Self::decode(&text).with_context(|| {
                    format!(
                        "{} holds no VAPID key; remove it to make a new one (every browser must then subscribe again)",
                        path.display()
                    )
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let key = SecretKey::try_generate()
            .map_err(|e| anyhow::anyhow!("no randomness for a VAPID key: {e}"))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding the VAPID key: {e}"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(URL_SAFE_NO_PAD.encode(der.as_bytes()).as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated a VAPID key; set push.vapid_private_key when several nodes share a database");
                Ok(Self::from_key(&key))
            }
            // Another process sharing the data dir made it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Self::decode(&text)
            }
            Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }

    /// A key as configured: PKCS#8 DER in base64url (the standard alphabet and padding
    /// are accepted too), or the bare 32-byte private scalar that VAPID tools print.
    fn decode(text: &str) -> anyhow::Result<Self> {
        let text = text.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| anyhow::anyhow!("the VAPID key is not base64"))?;
        let key = if bytes.len() == 32 {
            SecretKey::from_slice(&bytes).map_err(|_| anyhow::anyhow!("not a P-256 key"))?
        } else {
            SecretKey::from_pkcs8_der(&bytes)
                .map_err(|_| anyhow::anyhow!("not a P-256 private key in PKCS#8 DER"))?
        };
        Ok(Self::from_key(&key))
    }

    fn from_key(key: &SecretKey) -> Self {
        let point = key.public_key().to_sec1_point(false);
        Self {
            key: SigningKey::from(key),
            public_key: URL_SAFE_NO_PAD.encode(point.as_bytes()),
        }
    }

    /// The application server key: the uncompressed public point, base64url.
    pub(crate) fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a push to `audience` (the endpoint's origin), valid
    /// for 12 hours from `now`; `subject` is the operator's contact.
    pub(crate) fn authorization(
        &self,
        audience: &str,
        subject: &str,
        now: Millis,
    ) -> anyhow::Result<String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": now.div_euclid(1000) + TOKEN_SECONDS,
            "sub": subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self
            .key
            .try_sign(signing_input.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing a VAPID token: {e}"))?;
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        Ok(format!(
            "vapid t={signing_input}.{signature}, k={}",
            self.public_key
        ))
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    use super::*;

    #[test]
    fn a_generated_key_is_kept_private_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = Vapid::load_or_create(None, dir.path()).unwrap();
        let again = Vapid::load_or_create(None, dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(first.public_key()).unwrap().len(),
            65
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(Vapid::load_or_create(None, dir.path()).is_err());
    }

    #[test]
    fn a_configured_key_wins_in_any_common_spelling() {
        let key = SecretKey::try_generate().unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let expected = Vapid::from_key(&key);
        let dir = tempfile::tempdir().unwrap();
        for text in [
            URL_SAFE_NO_PAD.encode(der.as_bytes()),
            base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
            URL_SAFE_NO_PAD.encode(key.to_bytes()),
        ] {
            let vapid = Vapid::load_or_create(Some(&Secret::new(text)), dir.path()).unwrap();
            assert_eq!(vapid.public_key(), expected.public_key());
        }
        assert!(!dir.path().join(KEY_FILE).exists());
        assert!(Vapid::load_or_create(Some(&Secret::new("AAAA")), dir.path()).is_err());
    }

    #[test]
    fn tokens_are_es256_signed_for_the_audience() {
        let key = SecretKey::try_generate().unwrap();
        let vapid = Vapid::from_key(&key);
        let header = vapid
            .authorization(
                "https://push.example.net",
                "mailto:ops@example.com",
                1_000_000,
            )
            .unwrap();
        let (token, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(k, vapid.public_key());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        let verifier = VerifyingKey::from(&SigningKey::from(&key));
        assert!(verifier.verify(input.as_bytes(), &signature).is_ok());
        let claims = input.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_000 + TOKEN_SECONDS);
    }
}
