//! 200 senders at once in one group: every member gets every message once, in the
//! stored order (their own too: sent over REST, they reach the sender's sockets like
//! another device's), and every unread count is exact.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::support::{Person, Ws, chat, person, run_bus};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(two_hundred_senders_in_one_group);

async fn two_hundred_senders_in_one_group(backend: Backend) {
    let app = spawn_app(backend).await;
    let _bus = run_bus(&app);
    let mut people: Vec<Person> = Vec::new();
    for n in 0..10 {
        people.push(person(&app, &format!("m{n}@storm.test")).await);
    }
    let others: Vec<&Person> = people[1..].iter().collect();
    let id = chat(&app, &people[0], &others).await;
    let mut sockets = Vec::new();
    for p in &people {
        let mut ws = Ws::connect(&app, &p.token).await;
        ws.alive().await;
        sockets.push(ws);
    }
    let sends = futures::future::join_all((0..200).map(|n| {
        let (app, who, id) = (&app, &people[n % people.len()], id.clone());
        async move {
            let res = app
                .post(
                    &format!("/chats/{id}/messages"),
                    Some(&who.token),
                    json!({"text": format!("storm {n}"), "client_msg_id": format!("s-{n}")}),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text);
            res.body
        }
    }))
    .await;
    let stored: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, id, sender_id FROM chat_messages WHERE chat_id = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(app.components.db.reader())
    .await
    .unwrap();
    assert_eq!(stored.len(), 200);
    let seqs: Vec<i64> = stored.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "numbered 1..200 without a gap"
    );
    let ids: Vec<&String> = stored.iter().map(|(_, id, _)| id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids rise with the stored order");
    assert_eq!(sends.len(), 200);

    for (p, ws) in people.iter().zip(sockets.iter_mut()) {
        let expected = &ids;
        let mut got: Vec<String> = Vec::new();
        while got.len() < expected.len() {
            let frame: Value = ws.next_of("message").await;
            got.push(frame["msg_id"].as_str().unwrap().to_owned());
        }
        let extra: Vec<Value> = ws
            .drain()
            .await
            .into_iter()
            .filter(|f| f["type"] == "message")
            .collect();
        assert!(extra.is_empty(), "no message twice: {extra:?}");
        let got: Vec<&String> = got.iter().collect();
        assert_eq!(&got, expected, "{}: every message once, in order", p.id);

        // Unread: what the others sent after this member's own last message.
        let last_own = stored
            .iter()
            .filter(|(_, _, sender)| *sender == p.id)
            .map(|(seq, _, _)| *seq)
            .max()
            .unwrap_or(0);
        let unread = app.get(&format!("/chats/{id}"), Some(&p.token)).await.body["unread"]
            .as_i64()
            .unwrap();
        assert_eq!(unread, 200 - last_own, "{}", p.id);
    }
    let by_sender: HashMap<&String, usize> =
        stored.iter().fold(HashMap::new(), |mut acc, (_, _, s)| {
            *acc.entry(s).or_default() += 1;
            acc
        });
    assert!(by_sender.values().all(|n| *n == 20));
}

crate::backend_tests!(a_sender_never_gets_its_own_message_back);

/// 100 messages over one socket, more than the socket remembers of what it was sent:
/// the fan-out's copies skip the socket they came from by address, not by memory.
async fn a_sender_never_gets_its_own_message_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@echo.test").await;
    let bob = person(&app, "bob@echo.test").await;
    let id = chat(&app, &ann, &[&bob]).await;
    let mut a = Ws::connect(&app, &ann.token).await;
    let mut b = Ws::connect(&app, &bob.token).await;
    for n in 0..100 {
        a.send(json!({"type": "send", "chat_id": id, "client_msg_id": format!("e-{n}"), "text": "echo?"}))
            .await;
    }
    for _ in 0..100 {
        a.next_of("sent").await;
    }
    // The fan-out runs only now, after all 100 were sent.
    let _bus = run_bus(&app);
    for _ in 0..100 {
        b.next_of("message").await;
    }
    let echoed: Vec<Value> = a
        .drain()
        .await
        .into_iter()
        .filter(|f| f["type"] == "message")
        .collect();
    assert!(echoed.is_empty(), "{} came back", echoed.len());
}
