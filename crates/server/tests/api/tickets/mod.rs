//! The ticketing story (seeds 001 §4 and 003), on SQLite with the in-process `coord` and
//! on PostgreSQL with Redis.

mod batches;
mod best;
mod expiry;
mod export;
mod fallback;
mod flow;
mod live_map;
mod replica;
mod seat_map;
mod sold_out;
mod storm;
mod waiting;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp};

/// An event body: one section per `(name, rows, seats_per_row, price)`.
pub fn event_body(sections: &[(&str, i64, i64, i64)], max_active: i64, hold_seconds: i64) -> Value {
    let sections: Vec<Value> = sections
        .iter()
        .map(|(name, rows, per_row, price)| {
            json!({"name": name, "rows": rows, "seats_per_row": per_row, "price": price})
        })
        .collect();
    json!({
        "name": "Tour final",
        "starts_at": "2099-12-31T18:00:00Z",
        "max_active": max_active,
        "hold_seconds": hold_seconds,
        "sections": sections,
    })
}

impl TestApp {
    /// Creates an event (as staff) and returns its id.
    pub async fn create_event(&self, body: Value) -> String {
        let staff = self.staff_token().await;
        let res = self.post("/admin/events", Some(&staff), body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        res.body["id"].as_str().unwrap().to_owned()
    }

    /// The event's seat ids, in map order.
    pub async fn seat_ids(&self, event: &str) -> Vec<String> {
        self.listed_seats(event, "").await
    }

    /// The seat ids the map lists with `filter` (a query string, or empty), in map order.
    pub async fn listed_seats(&self, event: &str, filter: &str) -> Vec<String> {
        let res = self
            .get(&format!("/events/{event}/seats{filter}"), None)
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        assert_eq!(res.headers["content-type"], "application/json");
        res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The seat map's items, in map order.
    pub async fn seat_items(&self, event: &str) -> Vec<Value> {
        let res = self.get(&format!("/events/{event}/seats"), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body["items"].as_array().unwrap().clone()
    }

    /// Each seat's status, by id.
    pub async fn seat_statuses(&self, event: &str) -> std::collections::HashMap<String, String> {
        self.seat_items(event)
            .await
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The seats the seat map shows as sold.
    pub async fn sold_seats(&self, event: &str) -> std::collections::HashSet<String> {
        self.seat_statuses(event)
            .await
            .into_iter()
            .filter(|(_, status)| status == "sold")
            .map(|(id, _)| id)
            .collect()
    }

    /// Each held seat's reservation, as the database has it.
    pub async fn held_seats(&self) -> std::collections::HashMap<String, String> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, reservation_id FROM seats WHERE status = 'held'")
                .fetch_all(self.components.db.reader())
                .await
                .unwrap();
        rows.into_iter().collect()
    }

    /// Joins the queue and returns the queue token.
    pub async fn join(&self, token: &str, event: &str) -> String {
        let res = self
            .request(
                Method::POST,
                &format!("/events/{event}/queue"),
                Some(token),
                None,
            )
            .await;
        assert!(
            res.status == StatusCode::CREATED || res.status == StatusCode::OK,
            "{}",
            res.text
        );
        res.body["queue_token"].as_str().unwrap().to_owned()
    }

    /// Leaves the event's waiting room (or hands on the admitted slot).
    pub async fn leave(&self, token: &str, event: &str) -> Answer {
        self.request(
            Method::DELETE,
            &format!("/events/{event}/queue"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn queue_status(&self, event: &str, queue_token: &str) -> Answer {
        self.request_with(
            Method::GET,
            &format!("/events/{event}/queue/status"),
            None,
            None,
            &[("X-Queue-Token", queue_token)],
        )
        .await
    }

    /// The queue status, asking the server to hold the answer up to `wait` seconds.
    pub async fn await_queue_status(&self, event: &str, queue_token: &str, wait: u64) -> Answer {
        let prefer = format!("wait={wait}");
        self.request_with(
            Method::GET,
            &format!("/events/{event}/queue/status"),
            None,
            None,
            &[("X-Queue-Token", queue_token), ("Prefer", &prefer)],
        )
        .await
    }

    /// Joins, lets the scheduler admit, and returns the access token.
    pub async fn admitted(&self, token: &str, event: &str) -> String {
        let queue_token = self.join(token, event).await;
        self.components
            .tickets
            .admit_next_batch(event)
            .await
            .unwrap();
        let status = self.queue_status(event, &queue_token).await;
        assert_eq!(status.body["state"], "active", "{}", status.text);
        status.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Queues every fan, admits them all in one batch, and returns their access tokens.
    pub async fn admit_all(&self, event: &str, fans: &[&str]) -> Vec<String> {
        let queue_tokens =
            futures::future::join_all(fans.iter().map(|fan| self.join(fan, event))).await;
        assert_eq!(
            self.components
                .tickets
                .admit_next_batch(event)
                .await
                .unwrap(),
            fans.len()
        );
        futures::future::join_all(queue_tokens.iter().map(|q| self.queue_status(event, q)))
            .await
            .into_iter()
            .map(|s| s.body["access_token"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn hold(&self, token: &str, access: &str, event: &str, seats: &[&str]) -> Answer {
        self.request_with(
            Method::POST,
            &format!("/events/{event}/reservations"),
            Some(token),
            Some(json!({"seat_ids": seats})),
            &[("X-Access-Token", access)],
        )
        .await
    }

    pub async fn pay(
        &self,
        token: &str,
        reservation: &str,
        body: Value,
        key: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.request_with(
            Method::POST,
            &format!("/reservations/{reservation}/payment"),
            Some(token),
            Some(body),
            &headers,
        )
        .await
    }

    /// Charges the wallet and returns the balance.
    pub async fn charge(&self, token: &str, amount: i64) -> i64 {
        let res = self
            .post("/wallet/charge", Some(token), json!({"amount": amount}))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body["balance"].as_i64().unwrap()
    }

    pub async fn wallet(&self, token: &str) -> Value {
        let res = self.get("/wallet", Some(token)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body
    }
}

pub fn wallet_payment() -> Value {
    json!({"method": "wallet"})
}

pub fn card_payment(card: &str) -> Value {
    json!({"method": "card", "card_token": card})
}
