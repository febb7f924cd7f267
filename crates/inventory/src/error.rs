//! Inventory's errors and the answers they give.

use axum::http::StatusCode;
use serde::Serialize;

use matsuri_core::ApiError;

/// A row of a refused import: its line in the file (the header is line 1) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("the file was refused: {} rows have errors", .0.len())]
    InvalidImport(Vec<RowError>),
    #[error("unknown import kind {0:?}: expected book, sales, purchases, adjustments or shipments")]
    UnknownKind(String),
    #[error("this Idempotency-Key was used with another file")]
    KeyReused,
    #[error("no stock is kept for SKU {0}")]
    UnknownSku(String),
    #[error("no marketplace channel {0}")]
    UnknownChannel(String),
    #[error("the channel was refused")]
    InvalidChannel(Vec<matsuri_core::FieldError>),
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for InventoryError {
    fn from(e: sqlx::Error) -> Self {
        InventoryError::Internal(e.into())
    }
}

impl From<std::io::Error> for InventoryError {
    fn from(e: std::io::Error) -> Self {
        InventoryError::Internal(e.into())
    }
}

impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        let detail = e.to_string();
        match e {
            InventoryError::InvalidImport(errors) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_import", detail)
                    .with("errors", serde_json::to_value(errors).unwrap_or_default())
            }
            InventoryError::UnknownKind(_) => {
                ApiError::validation(vec![matsuri_core::FieldError::new("kind", detail)])
            }
            InventoryError::KeyReused => ApiError::idempotency_key_reused(),
            InventoryError::UnknownSku(_) | InventoryError::UnknownChannel(_) => {
                ApiError::not_found(detail)
            }
            InventoryError::InvalidChannel(errors) => ApiError::validation(errors),
            InventoryError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
            }
            InventoryError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
