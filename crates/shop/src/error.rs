//! What can go wrong in the shop, and the contract code each failure answers with.

use axum::http::StatusCode;

use matsuri_core::{ApiError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("no product with id {0}")]
    ProductNotFound(String),
    #[error("not enough stock of {product_id}: {available} available, {requested} requested")]
    OutOfStock {
        product_id: String,
        available: i64,
        requested: i64,
    },
    #[error("the product is not in your cart")]
    NotInCart,
    #[error("the cart is empty")]
    CartEmpty,
    #[error("a product with this SKU already exists")]
    SkuTaken,
    #[error("no such order")]
    OrderNotFound,
    #[error("the order has shipped and can no longer be cancelled")]
    OrderShipped,
    #[error("an order that is {} cannot be cancelled", .0.as_str())]
    NotCancellable(crate::OrderStatus),
    #[error("the payment was declined: {reason}")]
    PaymentDeclined {
        order_number: String,
        reason: String,
    },
    #[error("the payment gateway failed; nothing was charged")]
    GatewayFailed { order_number: String },
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ShopError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ShopError::Invalid(vec![FieldError::new(field, message)])
    }

    /// True when an order was made and its payment failed: settling the order stored this
    /// answer for the `Idempotency-Key` that made it.
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            ShopError::PaymentDeclined { .. } | ShopError::GatewayFailed { .. }
        )
    }
}

impl From<sqlx::Error> for ShopError {
    fn from(e: sqlx::Error) -> Self {
        ShopError::Internal(e.into())
    }
}

impl From<ShopError> for ApiError {
    fn from(e: ShopError) -> Self {
        let detail = e.to_string();
        match e {
            ShopError::ProductNotFound(id) => {
                ApiError::new(StatusCode::NOT_FOUND, "product_not_found", detail)
                    .with("product_id", id)
            }
            ShopError::OutOfStock {
                product_id,
                available,
                ..
            } => ApiError::new(StatusCode::CONFLICT, "out_of_stock", detail)
                .with("product_id", product_id)
                .with("available", available),
            ShopError::NotInCart | ShopError::OrderNotFound => ApiError::not_found(detail),
            ShopError::CartEmpty => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cart_empty", detail)
            }
            ShopError::SkuTaken => ApiError::new(StatusCode::CONFLICT, "sku_taken", detail),
            ShopError::OrderShipped => ApiError::new(StatusCode::CONFLICT, "order_shipped", detail),
            ShopError::NotCancellable(status) => {
                ApiError::new(StatusCode::CONFLICT, "order_not_cancellable", detail)
                    .with("status", status.as_str())
            }
            ShopError::PaymentDeclined { order_number, .. } => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", detail)
                    .with("order_number", order_number)
            }
            ShopError::GatewayFailed { order_number } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "payment_gateway_error", detail)
                    .with("order_number", order_number)
            }
            ShopError::Invalid(errors) => ApiError::validation(errors),
            ShopError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
