//! What the chat stories share: a socket client, people, chats, and the bus running in
//! the background (test apps run no workers of their own).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::TestApp;

/// How long a story waits for a frame before it fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A signed-in user: token and id.
pub struct Person {
    pub token: String,
    pub id: String,
}

pub async fn person(app: &TestApp, email: &str) -> Person {
    let token = app.register(email).await;
    let id = app.components.keys.verify(&token).unwrap().user_id;
    Person {
        token,
        id: id.as_str().to_owned(),
    }
}

/// Creates a chat of `owner` with `others`; its id.
pub async fn chat(app: &TestApp, owner: &Person, others: &[&Person]) -> String {
    let ids: Vec<&str> = others.iter().map(|p| p.id.as_str()).collect();
    let res = app
        .post("/chats", Some(&owner.token), json!({"member_ids": ids}))
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    res.body["id"].as_str().unwrap().to_owned()
}

/// Sends over REST; the stored message.
pub async fn send(app: &TestApp, who: &Person, chat: &str, text: &str) -> Value {
    let res = app
        .post(
            &format!("/chats/{chat}/messages"),
            Some(&who.token),
            json!({"text": text, "client_msg_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

/// Runs the bus of `app` until dropped.
pub struct BusRunning(CancellationToken);

impl Drop for BusRunning {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub fn run_bus(app: &TestApp) -> BusRunning {
    let stop = CancellationToken::new();
    tokio::spawn(app.components.bus.clone().run(stop.clone()));
    BusRunning(stop)
}

/// A test's end of a socket.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(app: &TestApp, token: &str) -> Ws {
        let url = format!(
            "{}/api/v1/ws?token={token}",
            app.base.replacen("http://", "ws://", 1)
        );
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the socket opens");
        Ws { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("the frame goes out");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("the frame goes out");
    }

    /// The next JSON frame; fails after [`PATIENCE`].
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a readable frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(close) => panic!("the socket closed: {close:?}"),
                _ => {}
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Answers `ping` with `pong`: the socket is alive and has nothing queued before.
    pub async fn alive(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let _ = self.next_of("pong").await;
    }

    /// Every frame up to the server's `pong`.
    pub async fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["type"] == "pong" {
                return frames;
            }
            frames.push(frame);
        }
    }

    /// The close frame the server ends with.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("the close in time")
            {
                Some(Ok(Message::Close(close))) => return close,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}
