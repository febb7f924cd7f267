//! Push subscriptions: a browser registers its `PushSubscription` (endpoint and keys) and
//! removes it. An endpoint is registered once per user: registering it again updates its
//! keys and keeps its id. A user has at most [`MAX_SUBSCRIPTIONS_PER_USER`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use matsuri_core::FieldError;
use matsuri_core::ids::UserId;
use matsuri_db::Dialect;

use crate::endpoint::{decode_auth_secret, decode_p256dh};
use crate::{PushError, PushService};

/// Subscriptions one user may have: a browser profile each, with room to spare.
pub const MAX_SUBSCRIPTIONS_PER_USER: i64 = 20;

impl PushService {
    /// Registers a browser's push subscription for `user` and answers its id; the same
    /// endpoint from the same user again updates its keys and answers the same id. The
    /// endpoint must meet the [`crate::EndpointPolicy`] (its host is resolved here, before
    /// anything is written); `p256dh` and `auth` are base64url, padding optional.
    pub async fn subscribe(
        &self,
        user: &UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<String, PushError> {
        let url = self.policy.check(endpoint).await;
        let p256dh = decode_p256dh(p256dh);
        let auth = decode_auth_secret(auth);
        let (url, p256dh, auth) = match (url, p256dh, auth) {
            (Ok(url), Ok(p256dh), Ok(auth)) => (url, p256dh, auth),
            (url, p256dh, auth) => {
                let errors = [
                    ("endpoint", url.err()),
                    ("keys.p256dh", p256dh.err()),
                    ("keys.auth", auth.err()),
                ]
                .into_iter()
                .filter_map(|(field, error)| error.map(|message| FieldError::new(field, message)))
                .collect();
                return Err(PushError::Invalid(errors));
            }
        };
        let endpoint = url.as_str();
        let p256dh = URL_SAFE_NO_PAD.encode(p256dh);
        let auth = URL_SAFE_NO_PAD.encode(auth);
        let now = self.clock.now_ms();

        let mut tx = self.db.begin().await?;
        // Counting and adding must not interleave with another registration of the same
        // user. SQLite's writer is one connection already; PostgreSQL takes a lock per user.
        if self.db.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(user_lock(user))
                .execute(&mut *tx)
                .await?;
        }
        let known: Option<String> = sqlx::query_scalar(
            "UPDATE push_subscriptions SET p256dh = $3, auth = $4, updated_at = $5 \
             WHERE user_id = $1 AND endpoint = $2 RETURNING id",
        )
        .bind(user.as_str())
        .bind(endpoint)
        .bind(&p256dh)
        .bind(&auth)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = known {
            tx.commit().await?;
            return Ok(id);
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(PushError::TooManySubscriptions);
        }
        let id = matsuri_core::ids::new_uuid_v7();
        sqlx::query(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(user.as_str())
        .bind(endpoint)
        .bind(&p256dh)
        .bind(&auth)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(subscription_id = %id, host = url.host_str().unwrap_or_default(), "push subscription registered");
        Ok(id)
    }

    /// Removes one of `user`'s subscriptions; someone else's or an unknown one is
    /// [`PushError::SubscriptionNotFound`].
    pub async fn unsubscribe(&self, user: &UserId, id: &str) -> Result<(), PushError> {
        let deleted = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user.as_str())
            .execute(self.db.writer())
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(PushError::SubscriptionNotFound);
        }
        Ok(())
    }

    /// How many subscriptions `user` has.
    pub async fn subscription_count(&self, user: &UserId) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_one(self.db.reader())
                .await?,
        )
    }
}

/// The PostgreSQL advisory lock that serialises one user's registrations.
fn user_lock(user: &UserId) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"push_subscriptions ")
        .chain_update(user.as_str().as_bytes())
        .finalize();
    digest
        .iter()
        .take(8)
        .fold(0_i64, |lock, byte| (lock << 8) | i64::from(*byte))
}
