//! What the ticketing API shows: events, seats, reservations, tickets, wallets and the
//! waiting room's answers.

use serde::{Deserialize, Serialize};

/// A block of seats: `rows` × `seats_per_row`, all at one price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Section {
    pub name: String,
    pub rows: i64,
    pub seats_per_row: i64,
    /// Price of each seat, in yen.
    pub price: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: String,
    pub name: String,
    pub starts_at: String,
    /// When the sale opens; before it, joining the queue puts a user in the pre-queue.
    pub sale_starts_at: Option<String>,
    pub hold_seconds: i64,
    pub max_active: i64,
    pub seat_count: i64,
    pub sections: Vec<Section>,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seat {
    pub id: String,
    pub section: String,
    pub row: i64,
    pub number: i64,
    pub price: i64,
    pub status: SeatStatus,
}

/// A seat map: `GET /events/{id}/seats`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatList {
    pub items: Vec<Seat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Paid,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    pub reservation_id: String,
    pub event_id: String,
    pub status: ReservationStatus,
    pub seat_ids: Vec<String>,
    pub amount: i64,
    pub currency: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Valid,
    Used,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub event_id: String,
    pub seat_id: String,
    pub section: String,
    pub row: i64,
    pub number: i64,
    pub price: i64,
    pub status: TicketStatus,
    /// The signed payload the QR code carries (an EdDSA-signed JWT; verify it offline
    /// with the key from `GET /tickets/signing-key`).
    pub qr_payload: String,
    pub qr_url: String,
}

/// What a paid reservation answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Purchase {
    pub reservation_id: String,
    pub tickets: Vec<Ticket>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Wallet {
    pub balance: i64,
    /// Everything ever charged into the wallet.
    pub charged_total: i64,
    /// Everything ever paid from it.
    pub paid_total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub queue_token: String,
    /// `waiting`, `active` (joined again after admission) or `sold_out`.
    pub state: QueueState,
    /// 1 = next in line; 0 = already admitted. Before the sale opens every pre-queue
    /// entry shows 0 and its place is drawn at random.
    pub position: u64,
    pub estimated_wait_seconds: u64,
    /// When to ask for the status again: sooner near the front, seldom far back, so a
    /// crowd of waiting clients does not crowd out the admitted ones.
    pub poll_after_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Waiting,
    Active,
    Expired,
    /// Every seat is sold (none available, none held): the user is out of the queue.
    SoldOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueStatus {
    pub state: QueueState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
    /// While waiting: when to ask again (0 after a held request: at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<String>,
}

/// What a scanner learns from a ticket's QR payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub valid: bool,
    pub ticket_id: Option<String>,
    /// `section row-number`, e.g. `A 3-12`.
    pub seat: Option<String>,
    pub already_used: bool,
}

/// The payload of `ticket.purchased`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketPurchased {
    pub reservation_id: String,
    pub event_id: String,
    pub user_id: String,
    pub amount: i64,
    pub payment_method: String,
    pub ticket_ids: Vec<String>,
    pub seat_ids: Vec<String>,
    pub paid_at: String,
}
