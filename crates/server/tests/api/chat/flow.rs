//! A conversation end to end: a message over the socket, its delivered and read receipts
//! back to the sender, unread counts, history, a resend, a resume after being away, and
//! a node that died between storing a message and delivering it.

use serde_json::json;

use super::support::{Ws, chat, person, run_bus, send};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(
    a_message_its_receipts_and_the_unread_count,
    fifty_messages_sent_while_away_come_back_once_each_in_order,
    a_message_stored_by_a_node_that_died_is_still_delivered,
    one_acknowledgement_tells_every_sender_it_covers
);

async fn a_message_its_receipts_and_the_unread_count(backend: Backend) {
    let app = spawn_app(backend).await;
    let _bus = run_bus(&app);
    let ann = person(&app, "ann@chat.test").await;
    let bob = person(&app, "bob@chat.test").await;
    let id = chat(&app, &ann, &[&bob]).await;
    // A direct chat is one chat, whoever starts it.
    let again = app
        .post("/chats", Some(&bob.token), json!({"member_ids": [ann.id]}))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(again.body["kind"], "direct");

    let mut a = Ws::connect(&app, &ann.token).await;
    let mut b = Ws::connect(&app, &bob.token).await;
    a.alive().await;
    b.alive().await;
    a.send(json!({"type": "send", "chat_id": id, "client_msg_id": "c-1", "text": "こんにちは"}))
        .await;
    let sent = a.next_of("sent").await;
    assert_eq!(sent["client_msg_id"], "c-1");
    let msg_id = sent["msg_id"].as_str().unwrap().to_owned();

    let message = b.next_of("message").await;
    assert_eq!(message["msg_id"], msg_id.as_str());
    assert_eq!(message["sender_id"], ann.id.as_str());
    assert_eq!(message["text"], "こんにちは");
    let unread = b.next_of("unread").await;
    assert_eq!(unread["count"], 1);
    let listed = app.get(&format!("/chats/{id}"), Some(&bob.token)).await;
    assert_eq!(listed.body["unread"], 1);
    assert_eq!(listed.body["last_message"]["id"], msg_id.as_str());

    // Sending the same client id again answers the first message; nothing new is stored.
    a.send(json!({"type": "send", "chat_id": id, "client_msg_id": "c-1", "text": "こんにちは"}))
        .await;
    assert_eq!(a.next_of("sent").await["msg_id"], msg_id.as_str());

    b.send(json!({"type": "delivered", "chat_id": id, "msg_id": msg_id}))
        .await;
    let delivered = a.next_of("delivered").await;
    assert_eq!(delivered["user_id"], bob.id.as_str());
    assert_eq!(delivered["msg_id"], msg_id.as_str());
    b.send(json!({"type": "read", "chat_id": id, "msg_id": msg_id}))
        .await;
    let read = a.next_of("read").await;
    assert_eq!(read["user_id"], bob.id.as_str());
    assert_eq!(b.next_of("unread").await["count"], 0);

    let history = app
        .get(&format!("/chats/{id}/messages"), Some(&ann.token))
        .await;
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", history.text);
    assert!(items[0]["delivered_at"].is_string());
    assert!(items[0]["read_at"].is_string());
    assert_eq!(
        app.get(&format!("/chats/{id}"), Some(&bob.token))
            .await
            .body["unread"],
        0
    );

    // Over REST: a resend of the same client id answers 200 with the first message.
    let body = json!({"text": "また", "client_msg_id": "r-1"});
    let first = app
        .post(
            &format!("/chats/{id}/messages"),
            Some(&bob.token),
            body.clone(),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let second = app
        .post(&format!("/chats/{id}/messages"), Some(&bob.token), body)
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(a.next_of("message").await["msg_id"], first.body["id"]);
    // Bob's own message moved his read mark; Ann has one unread.
    let ann_view = app.get(&format!("/chats/{id}"), Some(&ann.token)).await;
    assert_eq!(ann_view.body["unread"], 1);
    assert_eq!(
        app.get(&format!("/chats/{id}"), Some(&bob.token))
            .await
            .body["unread"],
        0
    );
    let read = app
        .post(
            &format!("/chats/{id}/read"),
            Some(&ann.token),
            json!({"msg_id": first.body["id"]}),
        )
        .await;
    assert_eq!(read.body["unread"], 0, "{}", read.text);
    let count: i64 = app.count("SELECT COUNT(*) FROM chat_messages").await;
    assert_eq!(count, 2);
}

async fn fifty_messages_sent_while_away_come_back_once_each_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@resume.test").await;
    let bob = person(&app, "bob@resume.test").await;
    let id = chat(&app, &ann, &[&bob]).await;
    let seen = send(&app, &ann, &id, "before").await;
    let mut sent = Vec::new();
    for n in 0..50 {
        sent.push(send(&app, &ann, &id, &format!("away {n}")).await["id"].clone());
    }
    // Delivered while Bob is away.
    while app.components.bus.run_once().await.unwrap() > 0 {}
    let mut b = Ws::connect(&app, &bob.token).await;
    b.send(json!({"type": "resume", "after": seen["id"]})).await;
    let mut got = Vec::new();
    loop {
        let frame = b.next().await;
        match frame["type"].as_str() {
            Some("message") => got.push(frame["msg_id"].clone()),
            Some("resumed") => {
                assert_eq!(frame["count"], 50);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(got, sent, "each once, in order, nothing before the mark");
    // The next message arrives live, once.
    let _bus = run_bus(&app);
    let next = send(&app, &ann, &id, "live").await;
    assert_eq!(b.next_of("message").await["msg_id"], next["id"]);
}

async fn a_message_stored_by_a_node_that_died_is_still_delivered(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@crash.test").await;
    let bob = person(&app, "bob@crash.test").await;
    let id = chat(&app, &ann, &[&bob]).await;
    // A node stores the message and dies before its bus delivers it: no bus runs here,
    // and the node is gone before another one starts.
    let node = app.spawn_peer().await;
    let stored = send(&node, &ann, &id, "stored, not delivered").await;
    drop(node);
    let mut b = Ws::connect(&app, &bob.token).await;
    b.alive().await;
    let _bus = run_bus(&app);
    let message = b.next_of("message").await;
    assert_eq!(message["msg_id"], stored["id"]);
}

async fn one_acknowledgement_tells_every_sender_it_covers(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@group.test").await;
    let bob = person(&app, "bob@group.test").await;
    let cy = person(&app, "cy@group.test").await;
    let id = chat(&app, &ann, &[&bob, &cy]).await;
    let from_ann = send(&app, &ann, &id, "one").await;
    let from_cy = send(&app, &cy, &id, "two").await;
    let mut a = Ws::connect(&app, &ann.token).await;
    let mut c = Ws::connect(&app, &cy.token).await;
    a.alive().await;
    c.alive().await;
    // Bob has both: acknowledging the newest covers Ann's too.
    let res = app
        .post(
            &format!(
                "/chats/{id}/messages/{}/delivered",
                from_cy["id"].as_str().unwrap()
            ),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let to_ann = a.next_of("delivered").await;
    assert_eq!(to_ann["msg_id"], from_ann["id"]);
    assert_eq!(to_ann["user_id"], bob.id.as_str());
    assert_eq!(c.next_of("delivered").await["msg_id"], from_cy["id"]);
    // Cy has Ann's message (replying moved Cy's marks past it) and now Bob has it: it is
    // delivered to everyone, and read by Cy only.
    let history = app
        .get(&format!("/chats/{id}/messages"), Some(&ann.token))
        .await;
    let ann_message = &history.body["items"][1];
    assert_eq!(ann_message["id"], from_ann["id"]);
    assert!(ann_message["delivered_at"].is_string(), "{ann_message}");
    assert!(ann_message["read_at"].is_null(), "{ann_message}");
}
