//! What can go wrong in ticketing, and the contract code each failure answers with.

use axum::http::StatusCode;

use matsuri_core::{ApiError, FieldError, Yen};

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("no such event")]
    EventNotFound,
    #[error("no such reservation")]
    ReservationNotFound,
    #[error("no such ticket")]
    TicketNotFound,
    #[error("the sale for this event is over")]
    SaleClosed,
    #[error("one or more of these seats is not available")]
    SeatUnavailable,
    #[error("you already hold as many seats as one admission allows; pay or cancel first")]
    HoldLimitReached,
    #[error("the access token is missing, unknown or expired; join the queue")]
    AccessTokenInvalid,
    #[error("you are still waiting in the queue")]
    NotAdmitted,
    #[error("the queue token is not valid for this event")]
    QueueTokenInvalid,
    #[error("the hold has expired; its seats were released")]
    ReservationExpired,
    #[error("this reservation is already paid")]
    AlreadyPaid,
    #[error("a payment for this reservation is in progress")]
    PaymentInProgress,
    #[error("the payment was declined: {0}")]
    PaymentDeclined(String),
    #[error("the payment gateway failed; nothing was charged")]
    GatewayFailed,
    #[error("the wallet balance is too low: {balance} available, {amount} needed")]
    InsufficientBalance { balance: Yen, amount: Yen },
    #[error("the waiting room is unavailable; try again shortly")]
    QueueUnavailable,
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl TicketError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        TicketError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<matsuri_db::batches::Stopped> for TicketError {
    fn from(e: matsuri_db::batches::Stopped) -> Self {
        TicketError::Internal(e.into())
    }
}

impl From<sqlx::Error> for TicketError {
    fn from(e: sqlx::Error) -> Self {
        TicketError::Internal(e.into())
    }
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        let detail = e.to_string();
        let status = |status, code| ApiError::new(status, code, detail.clone());
        match e {
            TicketError::EventNotFound
            | TicketError::ReservationNotFound
            | TicketError::TicketNotFound => ApiError::not_found(detail),
            TicketError::SaleClosed => status(StatusCode::CONFLICT, "sale_closed"),
            TicketError::SeatUnavailable => status(StatusCode::CONFLICT, "seat_unavailable"),
            TicketError::HoldLimitReached => status(StatusCode::CONFLICT, "hold_limit_reached"),
            TicketError::AccessTokenInvalid => {
                status(StatusCode::UNAUTHORIZED, "access_token_invalid")
            }
            TicketError::NotAdmitted => status(StatusCode::FORBIDDEN, "not_admitted"),
            TicketError::QueueTokenInvalid => {
                status(StatusCode::UNAUTHORIZED, "queue_token_invalid")
            }
            TicketError::ReservationExpired => status(StatusCode::GONE, "reservation_expired"),
            TicketError::AlreadyPaid => status(StatusCode::CONFLICT, "already_paid"),
            TicketError::PaymentInProgress => {
                status(StatusCode::CONFLICT, "payment_in_progress").with_retry_after(1)
            }
            TicketError::PaymentDeclined(_) => {
                status(StatusCode::PAYMENT_REQUIRED, "payment_declined")
            }
            TicketError::GatewayFailed => status(StatusCode::BAD_GATEWAY, "payment_gateway_error"),
            TicketError::InsufficientBalance { balance, amount } => {
                status(StatusCode::PAYMENT_REQUIRED, "insufficient_balance")
                    .with("balance", balance.0)
                    .with("amount", amount.0)
            }
            TicketError::QueueUnavailable => {
                status(StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable").with_retry_after(1)
            }
            TicketError::Invalid(errors) => ApiError::validation(errors),
            TicketError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
