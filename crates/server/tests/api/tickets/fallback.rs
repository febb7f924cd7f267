//! Redis stops in the middle of a sale: access tokens are checked against the database
//! (seed 003's fallback) and fans keep buying. Redis is cut off by closing a TCP proxy
//! that stands between matsuri and it.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::{event_body, wallet_payment};
use crate::helpers::{Backend, spawn_app_with};

/// A TCP proxy to Redis that can be cut.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                registry.lock().unwrap().push(pipe.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Self { port, tasks }
    }

    /// Closes every connection and stops accepting new ones.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_checks_fall_back_to_the_database_when_redis_stops() {
    let Some(Backend::PostgresRedis(postgres, redis)) = Backend::postgres_redis() else {
        return;
    };
    let url = url::Url::parse(&redis).unwrap();
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(6379)
    );
    let proxy = Proxy::start(target).await;
    let proxied = format!("redis://127.0.0.1:{}", proxy.port);
    let app = spawn_app_with(Backend::PostgresRedis(postgres, redis), |settings| {
        settings.coord_url = proxied;
    })
    .await;
    let event = app
        .create_event(event_body(&[("A", 1, 6, 4_000)], 10, 600))
        .await;
    let seats = app.seat_ids(&event).await;
    let first = app.register("before@example.com").await;
    let second = app.register("during@example.com").await;
    let first_access = app.admitted(&first, &event).await;
    let second_access = app.admitted(&second, &event).await;
    app.charge(&second, 4_000).await;
    let before = app.hold(&first, &first_access, &event, &[&seats[0]]).await;
    assert_eq!(before.status, StatusCode::CREATED, "{}", before.text);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);

    proxy.cut();

    let during = app
        .hold(&second, &second_access, &event, &[&seats[1]])
        .await;
    assert_eq!(during.status, StatusCode::CREATED, "{}", during.text);
    let paid = app
        .pay(
            &second,
            during.body["reservation_id"].as_str().unwrap(),
            wallet_payment(),
            None,
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    let forged = app.hold(&first, "not-a-token", &event, &[&seats[2]]).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text);
    let spent = app
        .hold(&second, &second_access, &event, &[&seats[2]])
        .await;
    assert_eq!(
        spent.status,
        StatusCode::UNAUTHORIZED,
        "a purchase released the token in the database too: {}",
        spent.text
    );
    let join = app
        .request(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&first),
            None,
        )
        .await;
    assert_eq!(
        join.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        join.text
    );
    assert_eq!(join.code(), "queue_unavailable");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["checks"]["coord"], "unreachable");
    let metrics = app.get("/metrics", None).await;
    assert!(
        metrics.text.contains("matsuri_access_token_fallback_total"),
        "the fallback is counted"
    );
}
