//! The read replica (seed 001 §4), against a real streaming standby (`.ci/replica`): seat
//! maps and event lists read from it while it keeps up; when it is lost mid-rush (the
//! connection to it cut) reads move to the primary and every request still answers;
//! with its replay paused it falls behind, is taken out of use, and no seat that looked
//! free is ever sold twice, since holds decide on the primary. One story, as pausing the
//! standby's replay would hold back any other test reading it.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{event_body, wallet_payment};
use crate::helpers::{Backend, TestApp, service_url, spawn_app_with};

/// A TCP relay to the standby, so a test can cut every connection to it at once.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn to(port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Relay { port: local, task }
    }

    /// Cuts every connection and refuses new ones: the standby is gone.
    fn cut(&self) {
        self.task.abort();
    }
}

/// `url` with its database (the path) replaced by the one `of` names.
fn same_database(url: &str, of: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    let name = of.rsplit_once('/').map_or("", |(_, name)| name);
    format!("{base}/{name}")
}

fn port_of(url: &str) -> u16 {
    let authority = url.split('@').nth(1).unwrap_or(url);
    let host_port = authority.split('/').next().unwrap();
    host_port.rsplit_once(':').unwrap().1.parse().unwrap()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_maps_read_the_replica_and_survive_losing_it() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let Some(replica) = service_url("MATSURI_TEST_POSTGRES_REPLICA_URL") else {
        return;
    };
    let relay = Relay::to(port_of(&replica)).await;
    let relayed = format!("postgres://postgres@127.0.0.1:{}/postgres", relay.port);
    let app = spawn_app_with(backend.clone(), |settings| {
        let primary = settings.database_url();
        settings.database.replica_url = Some(matsuri_core::config::Secret::new(same_database(
            &relayed, &primary,
        )));
        settings.database.replica_check_ms = 50;
        settings.database.replica_max_lag_ms = 500;
    })
    .await;
    let db = app.components.db.clone();
    until("the replica coming into use", || db.replica_in_use()).await;

    let event = app
        .create_event(event_body(&[("A", 10, 20, 1_000)], 1_000, 600))
        .await;
    let seats = replayed_seats(&app, &event, 200).await;

    // Lost mid-rush: every request still answers.
    let fans = app.register_crowd("replica", 60).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = app.admit_all(&event, &fan_tokens).await;
    let rush = futures::future::join_all(fans.iter().zip(&access).enumerate().map(
        |(i, (fan, access))| {
            let (app, event, seats, relay) = (&app, &event, &seats, &relay);
            async move {
                if i == 30 {
                    relay.cut();
                }
                let map = app
                    .get(&format!("/events/{event}/seats?status=available"), None)
                    .await;
                assert_eq!(map.status, StatusCode::OK, "{}", map.text);
                let seat = seats[(i * 7) % seats.len()].as_str();
                let held = app.hold(fan, access, event, &[seat]).await;
                assert!(
                    held.status == StatusCode::CREATED || held.status == StatusCode::CONFLICT,
                    "{}",
                    held.text
                );
            }
        },
    ))
    .await;
    assert_eq!(rush.len(), 60);
    until("the lost replica going out of use", || !db.replica_in_use()).await;
    let events = app.get("/events", None).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    assert_eq!(app.seat_ids(&event).await.len(), 200);

    drop(app);
    paused_replay_never_sells_a_seat_twice(&backend, &replica).await;
}

/// The event's seats once the replica has all `count` of them.
async fn replayed_seats(app: &TestApp, event: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let seats = app.seat_ids(event).await;
        if seats.len() == count {
            return seats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica never had the event's {count} seats");
}

/// With the standby's replay paused, the seat map there stands still while seats sell
/// on the primary: it falls out of use, and fans buying from what they saw never get one
/// seat twice.
async fn paused_replay_never_sells_a_seat_twice(backend: &Backend, replica: &str) {
    let direct = spawn_app_with(backend.clone(), |settings| {
        let primary = settings.database_url();
        settings.database.replica_url = Some(matsuri_core::config::Secret::new(same_database(
            replica, &primary,
        )));
        settings.database.replica_check_ms = 50;
        settings.database.replica_max_lag_ms = 500;
    })
    .await;
    let db = direct.components.db.clone();
    until("the replica coming into use", || db.replica_in_use()).await;
    let event = direct
        .create_event(event_body(&[("A", 2, 10, 1_000)], 1_000, 600))
        .await;
    replayed_seats(&direct, &event, 20).await;

    let standby = sqlx::AnyPool::connect(replica).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&standby)
        .await
        .unwrap();
    let fans = direct.register_crowd("paused", 20).await;
    let fan_tokens: Vec<&str> = fans.iter().map(String::as_str).collect();
    let access = direct.admit_all(&event, &fan_tokens).await;
    let mut sold = HashSet::new();
    let mut looked_free_but_taken = 0;
    // Each fan buys the first seat the map shows free, trying again when it was taken.
    for (fan, access) in fans.iter().zip(&access) {
        loop {
            let free = direct.listed_seats(&event, "?status=available").await;
            let seat = free.first().expect("a seat left for every fan");
            let held = direct.hold(fan, access, &event, &[seat]).await;
            if held.status == StatusCode::CONFLICT {
                assert_eq!(held.code(), "seat_unavailable", "{}", held.text);
                looked_free_but_taken += 1;
                assert!(looked_free_but_taken < 10_000, "the map never caught up");
                continue;
            }
            assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
            direct.charge(fan, 1_000).await;
            let reservation = held.body["reservation_id"].as_str().unwrap();
            let paid = direct.pay(fan, reservation, wallet_payment(), None).await;
            assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
            assert!(sold.insert(seat.clone()), "seat {seat} sold twice");
            break;
        }
    }
    until(
        "the standby that stopped replaying going out of use",
        || !db.replica_in_use(),
    )
    .await;
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&standby)
        .await
        .unwrap();
    assert_eq!(
        sold.len(),
        20,
        "every seat sold once, from the primary's map"
    );
    assert_eq!(direct.sold_seats(&event).await.len(), 20);
    until("the caught-up replica coming back", || db.replica_in_use()).await;
}
