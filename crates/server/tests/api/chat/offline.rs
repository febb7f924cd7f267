//! A member with no socket anywhere: the message becomes a notification and a Web Push
//! that a push service decrypts with the subscription's keys and whose VAPID token it
//! verifies; a push service answering 410 removes the subscription. An endpoint that
//! would make the server call its own network is refused.

use std::time::Duration;

use serde_json::json;

use super::push_service::TestPushService;
use super::support::{Ws, chat, person, run_bus, send};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

crate::coord_backend_tests!(an_offline_member_gets_a_web_push);
crate::backend_tests!(private_push_endpoints_are_refused);

async fn an_offline_member_gets_a_web_push(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.push.allow_insecure_endpoints = true).await;
    let service = TestPushService::start().await.unwrap();
    let _bus = run_bus(&app);
    let ann = person(&app, "ann@push.test").await;
    let bob = person(&app, "bob@push.test").await;
    let id = chat(&app, &ann, &[&bob]).await;
    let browser = service.subscribe().unwrap();
    let subscribed = app
        .post(
            "/push/subscriptions",
            Some(&bob.token),
            json!({"endpoint": browser.endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}),
        )
        .await;
    assert_eq!(subscribed.status, 201, "{}", subscribed.text);
    let key = app.get("/push/vapid-public-key", None).await;
    let mut a = Ws::connect(&app, &ann.token).await;
    a.alive().await;

    send(&app, &ann, &id, "are you there?").await;
    let pushes = service
        .wait_for_deliveries(1, Duration::from_secs(20))
        .await
        .unwrap();
    let push = &pushes[0];
    assert_eq!(push.payload["body"], "are you there?");
    assert_eq!(push.payload["title"], "Test Customer");
    assert_eq!(push.payload["url"], format!("/chat/{id}"));
    assert_eq!(push.urgency.as_deref(), Some("high"));
    assert_eq!(push.vapid_key, key.body["key"].as_str().unwrap());
    assert!(service.refusals().is_empty(), "{:?}", service.refusals());
    // Ann is online: she gets the message, not a push.
    assert_eq!(pushes.len(), 1);
    let listed = app.get("/notifications", Some(&bob.token)).await;
    assert_eq!(listed.body["unread_count"], 1, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["kind"], "chat_message");
    assert_eq!(listed.body["items"][0]["subject_id"], id.as_str());

    // The browser is gone: the push service says so and the subscription goes.
    service.answer_with(410);
    send(&app, &ann, &id, "hello?").await;
    service
        .wait_for_attempts(2, Duration::from_secs(20))
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if app.count("SELECT COUNT(*) FROM push_subscriptions").await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "a 410 removes the subscription");
}

async fn private_push_endpoints_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = person(&app, "bob@ssrf.test").await;
    let service = TestPushService::start().await.unwrap();
    let browser = service.subscribe().unwrap();
    let keys = json!({"p256dh": browser.p256dh, "auth": browser.auth});
    for endpoint in [
        "http://127.0.0.1:9/push",
        "https://127.0.0.1/push",
        "https://10.1.2.3/push",
        "https://[::1]/push",
        "https://localhost/push",
    ] {
        let res = app
            .post(
                "/push/subscriptions",
                Some(&bob.token),
                json!({"endpoint": endpoint, "keys": keys}),
            )
            .await;
        assert_eq!(res.status, 422, "{endpoint}: {}", res.text);
        assert_eq!(res.body["errors"][0]["field"], "endpoint", "{}", res.text);
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM push_subscriptions").await,
        0
    );
}
