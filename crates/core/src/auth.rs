//! Bearer tokens: HS256-signed JWTs that carry the user id and role and expire.
//!
//! [`authenticate`] runs once per request and records what the `Authorization` header
//! proved; the [`AuthUser`] and [`StaffUser`] extractors then demand a valid identity, so a
//! domain crate needs no state to protect a route.
//!
//! The web UI's pages carry the same token in an `HttpOnly` session cookie instead, out of
//! reach of any script on the page. A request that changes something with the cookie must
//! also send the page's CSRF token (`X-CSRF-Token`), an HMAC of the session token that only
//! a page the server rendered for that session knows; a cross-site request has neither.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ApiError;
use crate::clock::Millis;
use crate::ids::UserId;

/// What a user may do. Staff use the admin APIs; streamers own live rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Staff,
    Streamer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
            Role::Streamer => "streamer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "customer" => Some(Role::Customer),
            "staff" => Some(Role::Staff),
            "streamer" => Some(Role::Streamer),
            _ => None,
        }
    }
}

/// Who made the request, as proven by a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iat: i64,
    exp: i64,
    iss: String,
}

const ISSUER: &str = "matsuri";

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
    #[error(
        "a request that changes something with the session cookie must carry the page's X-CSRF-Token"
    )]
    CsrfMissing,
}

/// The cookie that carries a browser's session token.
pub const SESSION_COOKIE: &str = "matsuri_session";
/// The header that carries a page's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// Signs and verifies tokens with one secret.
pub struct TokenKeys {
    csrf: Hmac<Sha256>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_seconds: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        // HMAC takes a key of any length, so the fallback is never used.
        let mut csrf = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        csrf.update(b"matsuri csrf ");
        Self {
            csrf,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2),
        }
    }

    /// A token for `user_id`, valid from `now` for the configured lifetime; also returns when
    /// it expires (ms).
    pub fn issue(
        &self,
        user_id: &UserId,
        role: Role,
        now: Millis,
    ) -> Result<(String, Millis), ApiError> {
        let iat = now.div_euclid(1000);
        let exp = iat.saturating_add(self.ttl_seconds);
        let claims = Claims {
            sub: user_id.as_str().to_owned(),
            role,
            iat,
            exp,
            iss: ISSUER.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("signing a token: {e}")))?;
        Ok((token, exp.saturating_mul(1000)))
    }

    /// How long a token lives, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        u64::try_from(self.ttl_seconds).unwrap_or_default()
    }

    /// The CSRF token of a session token: needs no storage, and changes with the session.
    pub fn csrf_token(&self, session: &str) -> String {
        let mut mac = self.csrf.clone();
        mac.update(session.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `given` is the CSRF token of `session`, compared in constant time.
    pub fn csrf_matches(&self, session: &str, given: &str) -> bool {
        let Some(given) = decode_hex(given) else {
            return false;
        };
        let mut mac = self.csrf.clone();
        mac.update(session.as_bytes());
        mac.verify_slice(&given).is_ok()
    }

    /// Checks the signature, issuer and expiry (against the wall clock).
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let user_id = UserId::parse(&data.claims.sub).ok_or(TokenError::Invalid)?;
        Ok(Identity {
            user_id,
            role: data.claims.role,
        })
    }
}

/// What the `Authorization` header of a request proved.
#[derive(Debug, Clone)]
enum Authn {
    Anonymous,
    Valid(Identity),
    Refused(TokenError),
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the session cookie proves: an expired or foreign cookie proves nothing (the
/// pages then ask to sign in), and a change made with it needs the CSRF token.
fn session_authn(keys: &TokenKeys, req: &Request) -> Authn {
    let Some(session) = cookie(req.headers(), SESSION_COOKIE) else {
        return Authn::Anonymous;
    };
    let Ok(identity) = keys.verify(session) else {
        return Authn::Anonymous;
    };
    let csrf = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if req.method().is_safe() || csrf.is_some_and(|given| keys.csrf_matches(session, given)) {
        Authn::Valid(identity)
    } else {
        Authn::Refused(TokenError::CsrfMissing)
    }
}

/// Middleware: reads the bearer token (or the session cookie), if any, and records the
/// result for the extractors.
pub async fn authenticate(
    State(keys): State<Arc<TokenKeys>>,
    mut req: Request,
    next: Next,
) -> Response {
    let authn = match req.headers().get(header::AUTHORIZATION) {
        None => session_authn(&keys, &req),
        Some(value) => match value.to_str().ok().and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        }) {
            Some(token) => match keys.verify(token.trim()) {
                Ok(identity) => Authn::Valid(identity),
                Err(e) => Authn::Refused(e),
            },
            None => Authn::Refused(TokenError::Invalid),
        },
    };
    if let Authn::Valid(identity) = &authn {
        tracing::Span::current().record("user_id", identity.user_id.as_str());
    }
    req.extensions_mut().insert(authn);
    next.run(req).await
}

fn identity_of(parts: &Parts) -> Result<Identity, ApiError> {
    match parts.extensions.get::<Authn>() {
        Some(Authn::Valid(identity)) => Ok(identity.clone()),
        Some(Authn::Refused(e)) => Err(ApiError::unauthorized(e.to_string())),
        Some(Authn::Anonymous) | None => Err(ApiError::unauthorized(
            "send a bearer token in the Authorization header",
        )),
    }
}

/// Any signed-in user; 401 otherwise.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        identity_of(parts).map(AuthUser)
    }
}

/// `Option<AuthUser>`: the signed-in user when the request carries a valid token, `None`
/// otherwise, for routes anyone may call that do a little more for a known user.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for AuthUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(identity_of(parts).ok().map(AuthUser))
    }
}

/// A signed-in staff member; 401 without a valid token, 403 for other roles.
#[derive(Debug, Clone)]
pub struct StaffUser(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for StaffUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let identity = identity_of(parts)?;
        if identity.role == Role::Staff {
            Ok(StaffUser(identity))
        } else {
            Err(ApiError::forbidden("this API is for staff only"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};

    #[test]
    fn issued_tokens_verify() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let user = UserId::generate();
        let (token, _) = keys
            .issue(&user, Role::Staff, SystemClock.now_ms())
            .unwrap_or_default();
        let identity = keys.verify(&token);
        assert_eq!(
            identity,
            Ok(Identity {
                user_id: user,
                role: Role::Staff
            })
        );
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = keys.csrf_token("session-a");
        assert_eq!(token.len(), 64);
        assert!(keys.csrf_matches("session-a", &token));
        assert!(!keys.csrf_matches("session-b", &token));
        assert!(!keys.csrf_matches("session-a", &token[..62]));
        assert!(!keys.csrf_matches("session-a", "zz"));
        let other = TokenKeys::new(b"another-secret-another-secret-xx", 60);
        assert!(!other.csrf_matches("session-a", &token));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(header::COOKIE, "a=1; matsuri_session=tok".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "matsuri"), None);
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let user = UserId::generate();
        let two_days_ago = SystemClock.now_ms() - 2 * 86_400_000;
        let (old, _) = keys
            .issue(&user, Role::Customer, two_days_ago)
            .unwrap_or_default();
        assert_eq!(keys.verify(&old), Err(TokenError::Expired));

        let other = TokenKeys::new(b"another-secret-another-secret-xx", 60);
        let (foreign, _) = other
            .issue(&user, Role::Customer, SystemClock.now_ms())
            .unwrap_or_default();
        assert_eq!(keys.verify(&foreign), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not-a-token"), Err(TokenError::Invalid));
    }
}
