//! The `Idempotency-Key` sequence every route that moves money or stock runs, written
//! once (`api.md`, "Idempotency"): claim the key (or learn that an earlier request with it
//! answered, is still running, or was a different request), let the work tie what it
//! creates to the key and store its answer in its own transaction, and end the key of a
//! request that was refused. Storage is `matsuri_db::IdempotencyStore`; this is the HTTP
//! side of it.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use matsuri_core::error::StoredResponse;
use matsuri_core::{ApiError, Json};
use matsuri_db::{IdempotencyStore, KeyLink, KeyState, fingerprint};

/// How long a request waits for another one with the same key to finish.
const KEY_WAIT: Duration = Duration::from_secs(30);

/// How the work under a key ended, when it did not succeed.
#[derive(Debug)]
pub enum Refused {
    /// The work stored this refusal for the key itself, with what it settled.
    Settled(ApiError),
    /// Nothing was stored for the key: a failure that is no answer (500, 503) gives the
    /// key back, any other refusal is stored and replayed from then on.
    Unsettled(ApiError),
}

impl Refused {
    /// A refusal nothing stored.
    pub fn unsettled(e: impl Into<ApiError>) -> Self {
        Refused::Unsettled(e.into())
    }
}

/// A request that may carry an `Idempotency-Key`.
pub struct Keyed<'a> {
    store: &'a IdempotencyStore,
    user: &'a str,
    scope: &'static str,
    key: Option<&'a str>,
    fingerprint: String,
}

impl<'a> Keyed<'a> {
    /// `request` is what makes two requests with one key the same request (the body, and
    /// what the path names); it is only fingerprinted when a key came.
    pub fn new(
        store: &'a IdempotencyStore,
        user: &'a str,
        scope: &'static str,
        key: Option<&'a str>,
        request: &impl Serialize,
    ) -> Self {
        Self {
            store,
            user,
            scope,
            key,
            fingerprint: key
                .map(|_| fingerprint(&serde_json::to_vec(request).unwrap_or_default()))
                .unwrap_or_default(),
        }
    }

    /// Answers a refusal decided before anything changed (the usual answer in a stampede),
    /// remembering it for the key in the same single write. `None` when the key was used
    /// before: [`Keyed::run`] then replays, refuses or waits.
    pub async fn refuse_early(&self, err: ApiError) -> Option<Response> {
        let Some(key) = self.key else {
            return Some(err.into_response());
        };
        if err.status().is_server_error() {
            return Some(err.into_response());
        }
        let stored = StoredResponse::refusal(&err);
        match self
            .store
            .record_answer(self.user, self.scope, key, &self.fingerprint, &stored)
            .await
        {
            Ok(true) => Some(stored.into_response()),
            Ok(false) => None,
            Err(e) => Some(ApiError::internal(e).into_response()),
        }
    }

    /// Runs `work` under the key: once for a new key, never again for a used one (that
    /// request's answer is replayed). The work gets the key's link to tie what it creates
    /// to the key and store its answer with it; it answers `status` with its value.
    pub async fn run<T, F, Fut>(self, status: StatusCode, work: F) -> Response
    where
        T: Serialize,
        F: FnOnce(Option<KeyLink<'a>>) -> Fut,
        Fut: Future<Output = Result<T, Refused>>,
    {
        let Some(key) = self.key else {
            return match work(None).await {
                Ok(value) => (status, Json(value)).into_response(),
                Err(Refused::Settled(e) | Refused::Unsettled(e)) => e.into_response(),
            };
        };
        match self
            .store
            .claim_or_wait(self.user, self.scope, key, &self.fingerprint, KEY_WAIT)
            .await
        {
            Err(e) => return ApiError::internal(e).into_response(),
            Ok(state) => {
                if let Some(answer) = earlier_answer(state) {
                    return answer;
                }
            }
        }
        let link = KeyLink {
            user_id: self.user,
            scope: self.scope,
            key,
        };
        match work(Some(link)).await {
            // The work stored this answer for the key in its own transaction.
            Ok(value) => StoredResponse::json(status, &value).into_response(),
            Err(Refused::Settled(e)) => StoredResponse::refusal(&e).into_response(),
            Err(Refused::Unsettled(e)) => self.end_refused(key, e).await,
        }
    }

    /// Ends the claimed key of a refused request: a failure that is no answer gives the
    /// key back (unless the request created something, whose settling answers it), any
    /// other refusal is stored.
    async fn end_refused(&self, key: &str, err: ApiError) -> Response {
        if matches!(
            err.status(),
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
        ) {
            if let Err(e) = self.store.release(self.user, self.scope, key).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
            return err.into_response();
        }
        let stored = StoredResponse::refusal(&err);
        if let Err(e) = self
            .store
            .complete(self.user, self.scope, key, &stored)
            .await
        {
            tracing::warn!(error = %e, "could not store an idempotent answer");
        }
        stored.into_response()
    }
}

/// The answer for a key an earlier request used: that request's answer again, 422
/// `idempotency_key_reused` for a different request, 409 `idempotency_key_in_use` while
/// it still runs. `None` when this request claimed the key.
pub fn earlier_answer(state: KeyState) -> Option<Response> {
    match state {
        KeyState::Claimed => None,
        KeyState::Replay(stored) => Some(stored.into_response()),
        KeyState::Mismatch => Some(ApiError::idempotency_key_reused().into_response()),
        KeyState::InProgress => Some(ApiError::idempotency_key_in_use().into_response()),
    }
}
