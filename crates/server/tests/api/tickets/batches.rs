//! Holds and wallet payments are made in batches, one transaction each. Here the batches
//! are full of conflicts the seat locks in `coord` would normally have turned away: the
//! database alone decides, and a crowd of fans then pays together.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use matsuri_coord::{Coord, SharedCoord};
use matsuri_tickets::{TicketError, TicketService};

use super::{event_body, wallet_payment};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(batches_of_conflicting_holds_then_payments);

/// A `coord` whose seat locks grant everything, as one that had lost them would.
struct SeatLocksLost(SharedCoord);

#[async_trait::async_trait]
impl Coord for SeatLocksLost {
    async fn ping(&self) -> anyhow::Result<()> {
        self.0.ping().await
    }
    async fn zadd_nx(&self, key: &str, member: &str, score: i64) -> anyhow::Result<bool> {
        self.0.zadd_nx(key, member, score).await
    }
    async fn zrank(&self, key: &str, member: &str) -> anyhow::Result<Option<u64>> {
        self.0.zrank(key, member).await
    }
    async fn zcard(&self, key: &str) -> anyhow::Result<u64> {
        self.0.zcard(key).await
    }
    async fn zpopmin(&self, key: &str, count: usize) -> anyhow::Result<Vec<(String, i64)>> {
        self.0.zpopmin(key, count).await
    }
    async fn zrem(&self, key: &str, member: &str) -> anyhow::Result<bool> {
        self.0.zrem(key, member).await
    }
    async fn zadd_many(&self, key: &str, members: &[(String, i64)]) -> anyhow::Result<()> {
        self.0.zadd_many(key, members).await
    }
    async fn zrange_head(&self, key: &str, count: usize) -> anyhow::Result<Vec<String>> {
        self.0.zrange_head(key, count).await
    }
    async fn zrem_many(&self, key: &str, members: &[String]) -> anyhow::Result<u64> {
        self.0.zrem_many(key, members).await
    }
    async fn zrem_up_to(&self, key: &str, max_score: i64) -> anyhow::Result<u64> {
        self.0.zrem_up_to(key, max_score).await
    }
    async fn zadd_each(
        &self,
        keys: &[String],
        member: &str,
        score: i64,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        self.0.zadd_each(keys, member, score, ttl).await
    }
    async fn zmax_each(&self, keys: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        self.0.zmax_each(keys).await
    }
    async fn zincr(&self, key: &str, member: &str, delta: i64) -> anyhow::Result<i64> {
        self.0.zincr(key, member, delta).await
    }
    async fn take_slots(
        &self,
        windows: &[matsuri_coord::Window],
        member: &str,
        now: i64,
    ) -> anyhow::Result<Result<(), Duration>> {
        self.0.take_slots(windows, member, now).await
    }
    async fn alloc_take(
        &self,
        order: &str,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> anyhow::Result<matsuri_coord::Taken> {
        self.0.alloc_take(order, lines, ttl).await
    }
    async fn alloc_give_back(&self, order: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.0.alloc_give_back(order).await
    }
    async fn alloc_counts(&self, items: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        self.0.alloc_counts(items).await
    }
    async fn alloc_state(&self, item: &str) -> anyhow::Result<Option<matsuri_coord::Allocation>> {
        self.0.alloc_state(item).await
    }
    async fn alloc_open(&self, item: &str) -> anyhow::Result<Vec<String>> {
        self.0.alloc_open(item).await
    }
    async fn alloc_sync(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
    ) -> anyhow::Result<Option<matsuri_coord::Allocation>> {
        self.0.alloc_sync(item, net, known, only_absent).await
    }
    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<bool> {
        if key.contains(":seat:") {
            return Ok(true);
        }
        self.0.set_nx(key, value, ttl).await
    }
    async fn set_many(&self, entries: &[(String, String)], ttl: Duration) -> anyhow::Result<()> {
        self.0.set_many(entries, ttl).await
    }
    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.0.get(key).await
    }
    async fn del(&self, key: &str) -> anyhow::Result<bool> {
        self.0.del(key).await
    }
    async fn incr_by(&self, key: &str, delta: i64) -> anyhow::Result<i64> {
        self.0.incr_by(key, delta).await
    }
    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        self.0.ttl(key).await
    }
}

/// 200 admitted fans hold two of 30 seats each, all at once, through a node whose seat
/// locks stop nothing: every seat is held by at most one hold, a hold short of a seat
/// gives back the other and its token's count, and the database agrees with the answers.
/// Then every winner pays from the wallet at once, 3 in 4 of them able to: the paid
/// ones get their tickets (replayed for their key), the others `insufficient_balance`,
/// and the money adds up.
async fn batches_of_conflicting_holds_then_payments(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 30, 500)], 1_000, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let tokens = app.register_crowd("batch", 200).await;
    let fans = futures::future::join_all(tokens.into_iter().enumerate().map(|(i, token)| {
        let app = &app;
        async move {
            // Three in four can pay for two seats.
            app.charge(&token, if i % 4 == 3 { 500 } else { 1_000 })
                .await;
            let user = app.components.keys.verify(&token).unwrap().user_id;
            (token, user)
        }
    }))
    .await;
    let fan_tokens: Vec<&str> = fans.iter().map(|(token, _)| token.as_str()).collect();
    let access = app.admit_all(&event, &fan_tokens).await;

    let node = TicketService::new(
        app.components.db.clone(),
        Arc::new(SeatLocksLost(app.components.coord.clone())),
        app.components.clock.clone(),
        app.components.gateway.clone(),
        app.settings.tickets.clone(),
        b"another node's queue secret, 32b",
    )
    .await
    .unwrap();
    let holds = futures::future::join_all(fans.iter().zip(&access).enumerate().map(
        |(i, ((_, user), access))| {
            let wanted = vec![
                seats[i % 30].clone(),
                seats[(i % 30 + 1 + i / 30) % 30].clone(),
            ];
            let (node, event) = (&node, &event);
            async move {
                let ids = node.parse_seat_ids(&wanted).unwrap();
                let pass = node.admit_hold(event, user, Some(access)).await.unwrap();
                let held = node.hold_seats(pass, ids).await;
                (i, wanted, held)
            }
        },
    ))
    .await;

    let mut holder: HashMap<String, String> = HashMap::new();
    let mut winners = Vec::new();
    for (i, wanted, held) in holds {
        match held {
            Ok(reservation) => {
                assert_eq!(reservation.amount, 1_000);
                for seat in &wanted {
                    let previous = holder.insert(seat.clone(), reservation.reservation_id.clone());
                    assert!(previous.is_none(), "seat {seat} held twice");
                }
                winners.push((i, reservation.reservation_id));
            }
            Err(TicketError::SeatUnavailable) => {}
            Err(other) => panic!("fan {i}: {other}"),
        }
    }
    assert!(
        (1..=15).contains(&winners.len()),
        "{} holds of two seats among 30",
        winners.len()
    );
    assert_eq!(
        app.held_seats().await,
        holder,
        "the database agrees with the answers"
    );
    let counted = app
        .count("SELECT CAST(COALESCE(SUM(live_holds), 0) AS BIGINT) FROM access_tokens")
        .await;
    assert_eq!(
        counted,
        winners.len() as i64,
        "losers gave their counts back"
    );

    let payments = futures::future::join_all(winners.iter().map(|(i, reservation)| {
        let (app, fan) = (&app, &fans[*i].0);
        let key = format!("pay-{reservation}");
        async move {
            let answer = app
                .pay(fan, reservation, wallet_payment(), Some(&key))
                .await;
            (*i, key, answer)
        }
    }))
    .await;
    let mut paid = 0;
    for (i, key, answer) in &payments {
        if i % 4 == 3 {
            assert_eq!(
                answer.status,
                StatusCode::PAYMENT_REQUIRED,
                "{}",
                answer.text
            );
            assert_eq!(answer.code(), "insufficient_balance");
            continue;
        }
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(answer.body["tickets"].as_array().unwrap().len(), 2);
        let reservation = answer.body["reservation_id"].as_str().unwrap();
        let again = app
            .pay(&fans[*i].0, reservation, wallet_payment(), Some(key))
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
        assert_eq!(again.body, answer.body, "the key replays its tickets");
        paid += 1;
    }
    let sold = app.sold_seats(&event).await;
    assert_eq!(sold.len(), 2 * paid);
    let ticket_seats: Vec<String> = sqlx::query_scalar("SELECT seat_id FROM tickets")
        .fetch_all(app.components.db.reader())
        .await
        .unwrap();
    assert_eq!(ticket_seats.len(), 2 * paid);
    assert_eq!(
        ticket_seats.into_iter().collect::<HashSet<_>>(),
        sold,
        "a ticket for every sold seat"
    );
    let (charged, balances, spent): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(charged_total) AS BIGINT), CAST(SUM(balance) AS BIGINT), \
         CAST(SUM(paid_total) AS BIGINT) FROM wallets",
    )
    .fetch_one(app.components.db.reader())
    .await
    .unwrap();
    assert_eq!(spent, 1_000 * paid as i64);
    assert_eq!(charged, balances + spent, "charged = balances + paid");

    // The bus hands the purchases to the data export in batches: a line each.
    while app.components.bus.run_once().await.unwrap() > 0 {}
    let export = super::export::exported(&app);
    let reservations: HashSet<&str> = export
        .iter()
        .map(|line| line["purchase"]["reservation_id"].as_str().unwrap())
        .collect();
    assert_eq!(export.len(), paid, "one line a purchase");
    assert_eq!(reservations.len(), paid, "no purchase twice");
}
