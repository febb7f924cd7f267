//! What can go wrong in push and notifications, and the contract code each failure
//! answers with.

use axum::http::StatusCode;

use matsuri_core::{ApiError, FieldError};

use crate::subscriptions::MAX_SUBSCRIPTIONS_PER_USER;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("no such push subscription")]
    SubscriptionNotFound,
    #[error("no such notification")]
    NotificationNotFound,
    #[error("a user has at most {MAX_SUBSCRIPTIONS_PER_USER} push subscriptions; remove one first")]
    TooManySubscriptions,
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PushError {
    fn from(e: sqlx::Error) -> Self {
        PushError::Internal(e.into())
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> Self {
        let detail = e.to_string();
        match e {
            PushError::SubscriptionNotFound | PushError::NotificationNotFound => {
                ApiError::not_found(detail)
            }
            PushError::TooManySubscriptions => {
                ApiError::new(StatusCode::CONFLICT, "too_many_subscriptions", detail)
            }
            PushError::Invalid(errors) => ApiError::validation(errors),
            PushError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
