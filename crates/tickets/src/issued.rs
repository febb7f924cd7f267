//! Issued tickets: the owner lists and shows them (with the QR image), and staff at the
//! gate verify a scanned payload, which marks the ticket used exactly once.

use sqlx::Row;
use sqlx::any::AnyRow;

use matsuri_core::ids::UserId;

use crate::qr::qr_url;
use crate::{Ticket, TicketError, TicketService, TicketStatus, Verification};

/// A ticket as stored (the columns of [`TICKET_COLUMNS`]).
pub(crate) struct TicketRow {
    pub id: String,
    pub event_id: String,
    pub seat_id: String,
    pub section: String,
    pub row_no: i64,
    pub seat_no: i64,
    pub price: i64,
    pub status: String,
    pub qr_payload: String,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for TicketRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            seat_id: row.try_get("seat_id")?,
            section: row.try_get("section")?,
            row_no: row.try_get("row_no")?,
            seat_no: row.try_get("seat_no")?,
            price: row.try_get("price")?,
            status: row.try_get("status")?,
            qr_payload: row.try_get("qr_payload")?,
        })
    }
}

const TICKET_COLUMNS: &str =
    "id, event_id, seat_id, section, row_no, seat_no, price, status, qr_payload";

/// The ticket a stored row (or one about to be stored) describes.
pub(crate) fn ticket_of(row: TicketRow) -> Ticket {
    Ticket {
        qr_url: qr_url(&row.id),
        id: row.id,
        event_id: row.event_id,
        seat_id: row.seat_id,
        section: row.section,
        row: row.row_no,
        number: row.seat_no,
        price: row.price,
        status: if row.status == "used" {
            TicketStatus::Used
        } else {
            TicketStatus::Valid
        },
        qr_payload: row.qr_payload,
    }
}

impl TicketService {
    /// The user's tickets after `cursor` (a ticket id); `limit + 1` rows.
    pub async fn tickets_of(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Ticket>, TicketError> {
        let rows: Vec<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(user.as_str())
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(ticket_of).collect())
    }

    /// One of the user's tickets; another user's answers as missing.
    pub async fn ticket(&self, user: &UserId, id: &str) -> Result<Ticket, TicketError> {
        let row: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user.as_str())
        .fetch_optional(self.db.reader())
        .await?;
        row.map(ticket_of).ok_or(TicketError::TicketNotFound)
    }

    /// The ticket's QR code as SVG.
    pub async fn ticket_qr_svg(&self, user: &UserId, id: &str) -> Result<String, TicketError> {
        let ticket = self.ticket(user, id).await?;
        crate::qr::qr_svg(&ticket.qr_payload)
    }

    /// The public key scanners verify QR payloads with (a JWK set).
    pub fn signing_key(&self) -> serde_json::Value {
        self.signer.jwks()
    }

    /// Checks a scanned payload and marks its ticket used; a second scan reports it as
    /// already used. A forged or unknown payload is not valid.
    pub async fn verify_ticket(&self, payload: &str) -> Result<Verification, TicketError> {
        let invalid = Verification {
            valid: false,
            ticket_id: None,
            seat: None,
            already_used: false,
        };
        let Some(claims) = self.signer.verify(payload) else {
            return Ok(invalid);
        };
        let used = sqlx::query(
            "UPDATE tickets SET status = 'used', used_at = $2 WHERE id = $1 AND status = 'valid'",
        )
        .bind(&claims.sub)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if used == 0 {
            // Signed by us but unknown here (say, a ticket of another deployment's data).
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tickets WHERE id = $1")
                .bind(&claims.sub)
                .fetch_optional(self.db.writer())
                .await?;
            if exists.is_none() {
                return Ok(invalid);
            }
        }
        metrics::counter!("matsuri_ticket_scans_total", "outcome" => if used == 1 { "admitted" } else { "already_used" })
            .increment(1);
        Ok(Verification {
            valid: true,
            ticket_id: Some(claims.sub),
            seat: Some(claims.lbl),
            already_used: used == 0,
        })
    }
}
