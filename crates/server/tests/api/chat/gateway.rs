//! The gateway's limits: a silent socket is dropped, a reader that falls behind is
//! closed with 1013 instead of its frames piling up, and either way it leaves the
//! registry.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::support::{Ws, person};
use crate::helpers::{Backend, spawn_app_with};

crate::backend_tests!(
    a_silent_socket_is_dropped,
    a_reader_that_falls_behind_is_closed
);

async fn a_silent_socket_is_dropped(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.realtime.idle_timeout_seconds = 1;
        s.realtime.ping_interval_seconds = 1;
    })
    .await;
    let ann = person(&app, "ann@idle.test").await;
    let mut ws = Ws::connect(&app, &ann.token).await;
    ws.alive().await;
    // Not reading means not answering the server's pings: silence.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1000);
    assert_eq!(close.reason.as_str(), "idle");
    let online = app.components.realtime.online(&[ann.id.as_str()]).await;
    assert_eq!(online.unwrap(), [false]);
}

async fn a_reader_that_falls_behind_is_closed(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.realtime.send_queue = 4;
        s.realtime.write_timeout_ms = 300;
    })
    .await;
    let ann = person(&app, "ann@slow.test").await;
    let url = format!(
        "{}/api/v1/ws?token={}",
        app.base.replacen("http://", "ws://", 1),
        ann.token
    );
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let realtime = &app.components.realtime;
    let big = matsuri_realtime::Frame::json(&json!({"type": "noise", "pad": "x".repeat(60_000)}))
        .unwrap();
    // Far more than the socket's buffers hold, while the client reads nothing.
    for _ in 0..600 {
        realtime.to_users(&[ann.id.as_str()], &big).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut gone = false;
    for _ in 0..200 {
        if realtime.online(&[ann.id.as_str()]).await.unwrap() == [false] {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        gone,
        "the socket that fell behind was closed and left the registry"
    );
    // The client finds the end of the stream after what reached it: far fewer frames
    // than were sent.
    let mut frames = 0;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(10), stream.next()).await
    {
        if message.is_close() {
            break;
        }
        frames += 1;
    }
    assert!(frames < 600, "{frames} frames reached the client");
}
