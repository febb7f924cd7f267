//! What the shop's API shows: products, carts and orders.

use serde::{Deserialize, Serialize};

/// A product and how many can still be sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Unit price before tax, in yen.
    pub price: i64,
    pub currency: String,
    pub available: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartLine {
    pub product_id: String,
    pub name: String,
    pub price: i64,
    pub quantity: i64,
    pub line_total: i64,
    /// How many are available now; checkout may still find fewer.
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub total: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingAddress {
    #[schema(format = "line", max_length = 100)]
    pub name: String,
    #[schema(format = "line", max_length = 16)]
    pub postal_code: String,
    #[schema(format = "line", max_length = 300)]
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    PaymentFailed,
    /// Cancelled by the customer before it shipped; its payment is refunded.
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> OrderStatus {
        match text {
            "paid" => OrderStatus::Paid,
            "payment_failed" => OrderStatus::PaymentFailed,
            "cancelled" => OrderStatus::Cancelled,
            _ => OrderStatus::PendingPayment,
        }
    }
}

/// An order. `total` is `subtotal` plus 10 % consumption tax, rounded down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub number: String,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub currency: String,
    pub shipping_address: ShippingAddress,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// When the payment of a cancelled order was refunded.
    pub refunded_at: Option<String>,
    /// Why the payment failed; kept for the staff, not shown to the customer.
    #[serde(skip)]
    pub failure_reason: Option<String>,
}

/// The consumption tax rate, in percent.
pub const TAX_PERCENT: i64 = 10;

/// Payload of `order.paid` (and `order.placed`, `order.payment_failed`, `order.cancelled`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: String,
    pub user_id: String,
    pub order: Order,
}
