//! The ticketing HTTP routes (`api.md`, "Tickets"): thin handlers that parse, call the
//! service and map the result.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::extract::integer;
use matsuri_core::page::{Page, PageQuery};
use matsuri_core::{ApiError, AuthUser, IdempotencyKey, Json, Problem, Query, StaffUser, Yen};
use matsuri_db::fingerprint;
use matsuri_module::idempotency::{Keyed, Refused, earlier_answer};

use crate::events::SectionRequest;
use crate::{
    ChargeKey, Charged, Event, NewEvent, PaymentMethod, Purchase, QueueEntry, QueueStatus,
    Reservation, SeatList, Ticket, TicketService, Verification, Wallet,
};

pub fn routes(tickets: Arc<TicketService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_event))
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(list_seats))
        .routes(routes!(join_queue, leave_queue))
        .routes(routes!(queue_status))
        .routes(routes!(hold_seats))
        .routes(routes!(get_reservation, cancel_reservation))
        .routes(routes!(pay_reservation))
        .routes(routes!(charge_wallet))
        .routes(routes!(get_wallet))
        .routes(routes!(list_tickets))
        .routes(routes!(signing_key))
        .routes(routes!(get_ticket))
        .routes(routes!(ticket_qr))
        .routes(routes!(verify_ticket))
        .with_state(tickets)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateEventRequest {
    #[schema(format = "line", max_length = 200)]
    pub name: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// RFC 3339, not after `starts_at`; without it the sale opens at once.
    #[schema(format = DateTime)]
    pub sale_starts_at: Option<String>,
    /// How long a hold lasts (default `tickets.default_hold_seconds`, 600).
    #[schema(minimum = 30, maximum = 3600)]
    #[serde(default, deserialize_with = "integer::optional")]
    pub hold_seconds: Option<i64>,
    /// How many admitted users may shop at once (default `tickets.default_max_active`, 500).
    #[schema(minimum = 1, maximum = 100_000)]
    #[serde(default, deserialize_with = "integer::optional")]
    pub max_active: Option<i64>,
    /// Each section's name once; at most `tickets.max_seats_per_event` (100,000) seats in all.
    #[schema(min_items = 1, max_items = 50)]
    pub sections: Vec<SectionRequest>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SeatQuery {
    /// `available` lists only the seats that can be held now.
    #[param(value_type = Option<SeatFilter>, inline)]
    pub status: Option<String>,
}

/// The seat map's one filter, as the document declares it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatFilter {
    Available,
}

/// The seats to hold: named, or the best available.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum HoldRequest {
    Seats(NamedSeats),
    Best(BestSeats),
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedSeats {
    /// 1 to `tickets.max_seats_per_hold` (4) seats of the event, each once.
    #[schema(value_type = Vec<matsuri_core::ids::Id>, min_items = 1, max_items = 4,
        extensions(("x-unique-items" = json!(true))))]
    pub seat_ids: Vec<String>,
}

/// The best `quantity` seats side by side in one row: rows in order, sections in the
/// event's order, or of `section` only.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BestSeats {
    /// 1 to `tickets.max_seats_per_hold` (4).
    #[schema(minimum = 1, maximum = 4)]
    pub quantity: i64,
    /// One of the event's sections.
    #[schema(min_length = 1, max_length = 64)]
    pub section: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PayRequest {
    /// `card` or `wallet`.
    pub method: String,
    /// With `card`: a test token (`tok_visa`, `tok_declined`, `tok_gateway_error`, `tok_slow`).
    pub card_token: Option<String>,
}

/// A payment as the document declares it: by card with its token, or from the wallet.
/// The handler reads it as a [`PayRequest`], so a wrong `method` is a 422 naming the field.
#[derive(Deserialize, utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "it only declares the body in the OpenAPI document"
)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PaymentChoice {
    Card {
        /// A test token: `tok_visa`, `tok_declined`, `tok_gateway_error`, `tok_slow`.
        #[schema(format = "line", max_length = 128)]
        card_token: String,
    },
    Wallet,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChargeRequest {
    /// Yen to add, at most `tickets.max_wallet_charge` (1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(deserialize_with = "integer::required")]
    pub amount: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    #[schema(max_length = 4096)]
    pub qr_payload: String,
}

/// Create an event with its seats (staff).
#[utoipa::path(post, path = "/admin/events", tag = "tickets", security(("bearer" = [])), request_body = CreateEventRequest,
    responses((status = 201, body = Event), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_event(
    State(tickets): State<Arc<TicketService>>,
    _staff: StaffUser,
    Json(body): Json<CreateEventRequest>,
) -> Result<(StatusCode, Json<Event>), ApiError> {
    let new = NewEvent::parse(
        &body.name,
        &body.starts_at,
        body.sale_starts_at.as_deref(),
        body.hold_seconds,
        body.max_active,
        &body.sections,
        tickets.settings(),
    )?;
    Ok((StatusCode::CREATED, Json(tickets.create_event(new).await?)))
}

/// Events.
#[utoipa::path(get, path = "/events", tag = "tickets", params(PageQuery), responses((status = 200, body = Page<Event>)))]
async fn list_events(
    State(tickets): State<Arc<TicketService>>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    let limit = page.limit()?;
    let rows = tickets.events_after(page.cursor.as_deref(), limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.clone())))
}

/// One event.
#[utoipa::path(get, path = "/events/{id}", tag = "tickets", params(("id" = String, Path)),
    responses((status = 200, body = Event), (status = 404, body = Problem)))]
async fn get_event(
    State(tickets): State<Arc<TicketService>>,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    Ok(Json(tickets.event(&id).await?))
}

/// The seat map with each seat's status.
#[utoipa::path(get, path = "/events/{id}/seats", tag = "tickets", params(("id" = String, Path), SeatQuery),
    responses((status = 200, body = SeatList), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_seats(
    State(tickets): State<Arc<TicketService>>,
    Path(id): Path<String>,
    Query(query): Query<SeatQuery>,
) -> Result<Response, ApiError> {
    let only_available = match query.status.as_deref() {
        None => false,
        Some("available") => true,
        Some(_) => {
            return Err(ApiError::validation(vec![matsuri_core::FieldError::new(
                "status",
                "the only filter is \"available\"",
            )]));
        }
    };
    let body = tickets.seat_map(&id, only_available).await?;
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json)], body).into_response())
}

/// Join the event's waiting room (joining again returns the same entry).
#[utoipa::path(post, path = "/events/{id}/queue", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, body = QueueEntry), (status = 200, description = "already in the queue", body = QueueEntry),
        (status = 404, body = Problem), (status = 409, description = "sale_closed", body = Problem),
        (status = 503, description = "queue_unavailable", body = Problem)))]
async fn join_queue(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<QueueEntry>), ApiError> {
    let (entry, new) = tickets.join_queue(&id, &who.user_id).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

/// Leave the event's waiting room; an admitted user's slot goes to the next in line.
#[utoipa::path(delete, path = "/events/{id}/queue", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 503, description = "queue_unavailable", body = Problem)))]
async fn leave_queue(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tickets.leave_queue(&id, &who.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a queue token stands: waiting (position, estimated wait), active (access token)
/// or expired. With `Prefer: wait=N` a user near the front is answered once admitted, or
/// after at most N seconds (`Preference-Applied: wait=N` then says the request was held).
#[utoipa::path(get, path = "/events/{id}/queue/status", tag = "tickets",
    params(("id" = String, Path), ("X-Queue-Token" = String, Header, description = "the `queue_token` the join answered"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: hold the answer up to N seconds, until admitted")),
    responses((status = 200, body = QueueStatus), (status = 401, description = "queue_token_invalid", body = Problem),
        (status = 503, description = "queue_unavailable", body = Problem)))]
async fn queue_status(
    State(tickets): State<Arc<TicketService>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = header_text(&headers, "x-queue-token").unwrap_or_default();
    let Some(wait) = preferred_wait(&headers) else {
        return Ok(Json(tickets.queue_status(&id, token).await?).into_response());
    };
    let (status, applied) = tickets
        .await_queue_status(&id, token, Duration::from_secs(wait))
        .await?;
    let mut response = Json(status).into_response();
    if let Some(applied) = applied {
        let applied = applied.as_secs();
        if let Ok(value) = HeaderValue::from_str(&format!("wait={applied}")) {
            response.headers_mut().insert("preference-applied", value);
        }
    }
    Ok(response)
}

/// The `wait` preference of the request's `Prefer` headers (RFC 7240), in seconds. A
/// preference that does not parse is ignored, as the RFC asks.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|preference| {
            let (name, value) = preference.split(';').next()?.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("wait") {
                return None;
            }
            value.trim().trim_matches('"').parse().ok()
        })
}

/// Hold seats, named or the best available: all of them or none.
#[utoipa::path(post, path = "/events/{id}/reservations", tag = "tickets", security(("bearer" = [])), request_body = HoldRequest,
    params(("id" = String, Path), ("X-Access-Token" = String, Header, description = "the `access_token` of the caller's admission")),
    responses((status = 201, body = Reservation), (status = 401, description = "access_token_invalid", body = Problem),
        (status = 403, description = "not_admitted", body = Problem), (status = 409, description = "seat_unavailable, hold_limit_reached, sale_closed", body = Problem)))]
async fn hold_seats(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<HoldRequest>, ApiError>,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    let access = header_text(&headers, "x-access-token");
    // Who may hold is decided before the body is looked at.
    let pass = tickets.admit_hold(&id, &who.user_id, access).await?;
    let Json(body) = body?;
    let reservation = match body {
        HoldRequest::Seats(named) => {
            let seats = tickets.parse_seat_ids(&named.seat_ids)?;
            tickets.hold_seats(pass, seats).await?
        }
        HoldRequest::Best(best) => {
            let (quantity, section) = tickets.parse_best(&id, best.quantity, best.section).await?;
            tickets.hold_best(pass, quantity, section).await?
        }
    };
    Ok((StatusCode::CREATED, Json(reservation)))
}

/// One of the caller's reservations.
#[utoipa::path(get, path = "/reservations/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Reservation), (status = 404, body = Problem)))]
async fn get_reservation(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(tickets.reservation(&who.user_id, &id).await?))
}

/// Cancel a hold and release its seats.
#[utoipa::path(delete, path = "/reservations/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "already_paid, payment_in_progress", body = Problem)))]
async fn cancel_reservation(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tickets.cancel_reservation(&who.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

const PAYMENT_SCOPE: &str = "ticket-payment";
const WALLET_SCOPE: &str = "wallet-charge";

/// Pay for a hold by card or wallet; the tickets are issued at once.
#[utoipa::path(post, path = "/reservations/{id}/payment", tag = "tickets", security(("bearer" = [])), request_body = PaymentChoice,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "replays the first answer for the same key")),
    responses((status = 201, body = Purchase), (status = 402, description = "payment_declined, insufficient_balance", body = Problem),
        (status = 404, body = Problem), (status = 409, description = "already_paid, payment_in_progress", body = Problem),
        (status = 410, description = "reservation_expired", body = Problem), (status = 502, description = "payment_gateway_error", body = Problem)))]
async fn pay_reservation(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<PayRequest>,
) -> Response {
    let method = match (body.method.as_str(), body.card_token.as_deref()) {
        ("wallet", _) => PaymentMethod::Wallet,
        ("card", token) => match matsuri_core::text::line("card_token", token.unwrap_or(""), 128) {
            Ok(token) => PaymentMethod::Card { token },
            Err(e) => return ApiError::validation(vec![e]).into_response(),
        },
        _ => return field_error("method", "must be \"card\" or \"wallet\"").into_response(),
    };
    let (tickets, user, id) = (&tickets, &who.user_id, id.as_str());
    // The same reservation, method and card make the same request.
    let request = (&id, &body.method, &body.card_token);
    Keyed::new(
        tickets.idempotency(),
        user.as_str(),
        PAYMENT_SCOPE,
        key.as_deref(),
        &request,
    )
    // The purchase stores its answer for the key in its own transaction; a failure that
    // is no answer gives the key back unless a charge was started with it, in which case
    // the sweeper settles the charge and answers or frees the key.
    .run(StatusCode::CREATED, |link| async move {
        tickets
            .pay(user, id, method, link)
            .await
            .map_err(Refused::unsettled)
    })
    .await
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![matsuri_core::FieldError::new(field, message)])
}

/// Add money to the caller's wallet.
#[utoipa::path(post, path = "/wallet/charge", tag = "tickets", security(("bearer" = [])), request_body = ChargeRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "replays the first answer for the same key")),
    responses((status = 200, body = Wallet), (status = 422, body = Problem)))]
async fn charge_wallet(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<ChargeRequest>,
) -> Response {
    let print = fingerprint(&serde_json::to_vec(&body).unwrap_or_default());
    let key = key.as_deref().map(|key| ChargeKey {
        scope: WALLET_SCOPE,
        key,
        fingerprint: &print,
    });
    match tickets
        .charge_wallet(&who.user_id, Yen(body.amount), key)
        .await
    {
        Ok(Charged::Done(wallet)) => Json(wallet).into_response(),
        Ok(Charged::Earlier(state)) => earlier_answer(state)
            .unwrap_or_else(|| ApiError::idempotency_key_in_use().into_response()),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The caller's wallet.
#[utoipa::path(get, path = "/wallet", tag = "tickets", security(("bearer" = [])), responses((status = 200, body = Wallet)))]
async fn get_wallet(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
) -> Result<Json<Wallet>, ApiError> {
    Ok(Json(tickets.wallet(&who.user_id).await?))
}

/// The caller's tickets.
#[utoipa::path(get, path = "/tickets", tag = "tickets", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Ticket>)))]
async fn list_tickets(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Ticket>>, ApiError> {
    let limit = page.limit()?;
    let rows = tickets
        .tickets_of(&who.user_id, page.cursor.as_deref(), limit)
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.clone())))
}

/// The public key (a JWK set) that verifies ticket QR payloads offline.
#[utoipa::path(get, path = "/tickets/signing-key", tag = "tickets", responses((status = 200, body = Object)))]
async fn signing_key(State(tickets): State<Arc<TicketService>>) -> Json<serde_json::Value> {
    Json(tickets.signing_key())
}

/// One of the caller's tickets.
#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
async fn get_ticket(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(tickets.ticket(&who.user_id, &id).await?))
}

/// The ticket's QR code.
#[utoipa::path(get, path = "/tickets/{id}/qr.svg", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, body = Problem)))]
async fn ticket_qr(
    State(tickets): State<Arc<TicketService>>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let svg = tickets.ticket_qr_svg(&who.user_id, &id).await?;
    let mut res = svg.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

/// Check a scanned QR payload at the gate and mark the ticket used (staff).
#[utoipa::path(post, path = "/admin/tickets/verify", tag = "tickets", security(("bearer" = [])), request_body = VerifyRequest,
    responses((status = 200, body = Verification), (status = 403, body = Problem)))]
async fn verify_ticket(
    State(tickets): State<Arc<TicketService>>,
    _staff: StaffUser,
    Json(body): Json<VerifyRequest>,
) -> Result<Json<Verification>, ApiError> {
    if body.qr_payload.chars().count() > 4_096 {
        return Err(field_error(
            "qr_payload",
            "is longer than any ticket's payload",
        ));
    }
    Ok(Json(tickets.verify_ticket(&body.qr_payload).await?))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_of(values: &[&str]) -> Option<u64> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("prefer", HeaderValue::from_str(value).unwrap());
        }
        preferred_wait(&headers)
    }

    #[test]
    fn the_wait_preference_is_found_among_others() {
        assert_eq!(wait_of(&["wait=10"]), Some(10));
        assert_eq!(wait_of(&["respond-async, WAIT = \"5\""]), Some(5));
        assert_eq!(wait_of(&["return=minimal", "wait=3;x=y"]), Some(3));
        assert_eq!(wait_of(&["wait=soon", "wait=-1"]), None);
        assert_eq!(wait_of(&["handling=lenient"]), None);
        assert_eq!(wait_of(&[]), None);
    }
}
