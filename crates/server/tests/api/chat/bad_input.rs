//! Bad input on the socket and over REST: a clear error, nothing stored, and the socket
//! still open where the contract keeps it open.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::support::{Ws, chat, person};
use crate::helpers::{Backend, spawn_app};

crate::backend_tests!(bad_frames_get_error_frames_and_change_nothing);

async fn bad_frames_get_error_frames_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@bad.test").await;
    let bob = person(&app, "bob@bad.test").await;
    let eve = person(&app, "eve@bad.test").await;
    let id = chat(&app, &ann, &[&bob]).await;

    // No token, a bad token: the upgrade is refused with 401.
    for path in ["/api/v1/ws", "/api/v1/ws?token=not-a-token"] {
        let res = app.get(path, None).await;
        assert_eq!(res.status, 401, "{path}: {}", res.text);
        assert_eq!(res.code(), "unauthorized");
    }
    // A valid token but no upgrade: a problem, not a socket.
    let res = app.get("/api/v1/ws", Some(&ann.token)).await;
    assert_eq!(res.status, 400);

    let mut ws = Ws::connect(&app, &eve.token).await;
    let cases = [
        ("{not json", "invalid_frame"),
        (r#"["a list"]"#, "invalid_frame"),
        (r#"{"no":"type"}"#, "invalid_frame"),
        (r#"{"type":"dance"}"#, "invalid_frame"),
        (r#"{"type":"send","chat_id":"x"}"#, "invalid_frame"),
        (r#"{"type":"subscribe","topic":"chat:1"}"#, "invalid_frame"),
        (r#"{"type":"resume","after":"yesterday"}"#, "invalid_frame"),
    ];
    for (frame, code) in cases {
        ws.send_raw(Message::text(frame)).await;
        let answer = ws.next().await;
        assert_eq!(answer["type"], "error", "{frame}: {answer}");
        assert_eq!(answer["code"], code, "{frame}: {answer}");
    }
    // A chat Eve is not in does not exist for her, whatever she does with it.
    for frame in [
        json!({"type": "send", "chat_id": id, "client_msg_id": "e-1", "text": "hi"}),
        json!({"type": "read", "chat_id": id, "msg_id": uuid::Uuid::now_v7().to_string()}),
        json!({"type": "delivered", "chat_id": id, "msg_id": uuid::Uuid::now_v7().to_string()}),
    ] {
        ws.send(frame.clone()).await;
        let answer = ws.next_of("error").await;
        assert_eq!(answer["code"], "not_found", "{frame}: {answer}");
    }
    for path in [format!("/chats/{id}"), format!("/chats/{id}/messages")] {
        let res = app.get(&path, Some(&eve.token)).await;
        assert_eq!(res.status, 404, "{path}");
    }
    // A text over 4,000 characters, in Bob's own chat.
    let mut b = Ws::connect(&app, &bob.token).await;
    let long = "あ".repeat(4_001);
    b.send(json!({"type": "send", "chat_id": id, "client_msg_id": "b-1", "text": long}))
        .await;
    let answer = b.next_of("error").await;
    assert_eq!(answer["code"], "validation_failed", "{answer}");
    assert_eq!(answer["client_msg_id"], "b-1", "names the refused message");
    let res = app
        .post(
            &format!("/chats/{id}/messages"),
            Some(&bob.token),
            json!({"text": long, "client_msg_id": "b-2"}),
        )
        .await;
    assert_eq!(res.status, 422);
    b.alive().await;
    ws.alive().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM chat_messages").await, 0);

    // A group too big, and members that are not users.
    let crowd: Vec<String> = (0..256).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let res = app
        .post("/chats", Some(&ann.token), json!({"member_ids": crowd}))
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    let res = app
        .post(
            "/chats",
            Some(&ann.token),
            json!({"member_ids": [crowd[0]]}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(app.count("SELECT COUNT(*) FROM chats").await, 1);

    // A frame over 64 KiB closes the socket with 1009.
    ws.send_raw(Message::text("x".repeat(100 * 1024))).await;
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1009);
}
