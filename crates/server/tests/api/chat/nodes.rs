//! Two nodes on one PostgreSQL and one Redis: Ann on node 1, Bob on node 2. A message,
//! its delivered receipt and its read receipt cross both ways; Bob's unread goes 1 → 0.

use serde_json::json;

use super::support::{Ws, chat, person, run_bus};
use crate::helpers::{Backend, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_across_two_nodes() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let one = spawn_app(backend).await;
    let two = one.spawn_peer().await;
    // Node 1 runs the bus; the fan-out reaches Bob on node 2 through Redis.
    let _bus = run_bus(&one);
    let ann = person(&one, "ann@nodes.test").await;
    let bob = person(&one, "bob@nodes.test").await;
    let id = chat(&one, &ann, &[&bob]).await;
    let mut a = Ws::connect(&one, &ann.token).await;
    let mut b = Ws::connect(&two, &bob.token).await;
    a.alive().await;
    b.alive().await;

    exchange(&id, &mut a, &mut b, &ann.id, &bob.id).await;
    exchange(&id, &mut b, &mut a, &bob.id, &ann.id).await;
    // A topic followed on node 2 hears what node 1 publishes; a socket that does not
    // follow it hears nothing.
    b.send(json!({"type": "subscribe", "topic": "live:room-1"}))
        .await;
    assert_eq!(b.next_of("subscribed").await["topic"], "live:room-1");
    let shout = matsuri_realtime::Frame::json(&json!({"type": "shout", "n": 1})).unwrap();
    one.components
        .realtime
        .to_topic("live:room-1", &shout)
        .await
        .unwrap();
    assert_eq!(b.next_of("shout").await["n"], 1);
    assert!(a.drain().await.iter().all(|f| f["type"] != "shout"));
    b.send(json!({"type": "unsubscribe", "topic": "live:room-1"}))
        .await;
    let _ = b.next_of("unsubscribed").await;

    // Presence is shared: each node knows both are online, and neither once they leave.
    let users = [ann.id.as_str(), bob.id.as_str()];
    assert_eq!(
        two.components.realtime.online(&users).await.unwrap(),
        [true, true]
    );
    drop(a);
    drop(b);
    let mut offline = false;
    for _ in 0..100 {
        if one.components.realtime.online(&users).await.unwrap() == [false, false] {
            offline = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(offline, "a closed socket leaves the registry");
}

/// `from` sends, `to` receives, acknowledges and reads; each receipt reaches `from`.
async fn exchange(id: &str, from: &mut Ws, to: &mut Ws, sender: &str, recipient: &str) {
    let client = uuid::Uuid::new_v4().to_string();
    from.send(json!({"type": "send", "chat_id": id, "client_msg_id": client, "text": "across"}))
        .await;
    let msg_id = from.next_of("sent").await["msg_id"].clone();
    let message = to.next_of("message").await;
    assert_eq!(message["msg_id"], msg_id);
    assert_eq!(message["sender_id"], sender);
    assert_eq!(to.next_of("unread").await["count"], 1);
    to.send(json!({"type": "delivered", "chat_id": id, "msg_id": msg_id}))
        .await;
    let delivered = from.next_of("delivered").await;
    assert_eq!(delivered["user_id"], recipient);
    to.send(json!({"type": "read", "chat_id": id, "msg_id": msg_id}))
        .await;
    let read = from.next_of("read").await;
    assert_eq!(read["user_id"], recipient);
    assert_eq!(to.next_of("unread").await["count"], 0);
}
