//! The recommender's errors and the answers they give.

use axum::http::StatusCode;

use matsuri_core::{ApiError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum RecsError {
    #[error("invalid activity")]
    Invalid(Vec<FieldError>),
    #[error("no product {0}")]
    ProductNotFound(String),
    #[error("another recommendation run holds the lease")]
    Busy,
    #[error("the run lost its lease to another node")]
    LeaseLost,
    #[error("the run was stopped")]
    Stopped,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RecsError {
    fn from(e: sqlx::Error) -> Self {
        RecsError::Internal(e.into())
    }
}

impl From<RecsError> for ApiError {
    fn from(e: RecsError) -> Self {
        let detail = e.to_string();
        match e {
            RecsError::Invalid(errors) => ApiError::validation(errors),
            RecsError::ProductNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "product_not_found", detail)
            }
            RecsError::Busy => ApiError::new(StatusCode::CONFLICT, "run_in_progress", detail),
            RecsError::LeaseLost | RecsError::Stopped => {
                ApiError::internal(anyhow::anyhow!(detail))
            }
            RecsError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
