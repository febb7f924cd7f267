//! Web Push through the bus: a notice reaches each of the user's browsers encrypted and
//! signed; a push service's answer decides whether the push is done, retried or the
//! subscription removed; a notice that comes again sends nothing.

use std::time::Duration;

use matsuri_core::ids::UserId;

use crate::backend_tests;
use crate::helpers::{Backend, TestPush, like, message};
use crate::push_service::TestPushService;

const WAIT: Duration = Duration::from_secs(10);

async fn register(env: &TestPush, user: &UserId, service: &TestPushService) -> String {
    let browser = service.subscribe().unwrap();
    env.push
        .subscribe(user, &browser.endpoint, &browser.p256dh, &browser.auth)
        .await
        .unwrap()
}

async fn a_notice_reaches_every_browser_of_the_user_decrypted_and_signed(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let (user, other) = (UserId::generate(), UserId::generate());
    register(&env, &user, &service).await;
    register(&env, &user, &service).await;
    register(&env, &other, &service).await;

    let long = "あ".repeat(300);
    env.push
        .notify("event-1", &[message(&user, "chat-1", "Hanako", &long)])
        .await
        .unwrap();
    env.drain().await;
    let deliveries = service.wait_for_deliveries(2, WAIT).await.unwrap();
    assert_eq!(deliveries.len(), 2, "only the user's two browsers");
    assert!(service.refusals().is_empty(), "{:?}", service.refusals());
    assert_ne!(deliveries[0].endpoint, deliveries[1].endpoint);

    let page = env.push.notifications(&user, None, 20).await.unwrap();
    let notification = &page.items[0];
    let now_s = env.clock_seconds();
    for delivery in &deliveries {
        let payload = &delivery.payload;
        assert_eq!(payload["title"], "Hanako");
        let body = payload["body"].as_str().unwrap();
        assert_eq!(body.chars().count(), 200);
        assert!(body.ends_with('…'));
        assert_eq!(payload["url"], "/chat/chat-1");
        assert_eq!(payload["tag"], notification.id.as_str());
        assert_eq!(payload["kind"], "chat_message");
        assert_eq!(delivery.urgency.as_deref(), Some("high"));
        assert_eq!(delivery.ttl.as_deref(), Some("86400"));
        assert_eq!(delivery.vapid_key, env.push.public_key());
        assert_eq!(delivery.claims["aud"], service.origin());
        assert_eq!(delivery.claims["sub"], env.settings.subject.as_str());
        assert_eq!(delivery.claims["exp"], now_s + 12 * 3_600);
    }
}

async fn a_subscription_the_push_service_calls_gone_is_removed(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let user = UserId::generate();
    register(&env, &user, &service).await;
    service.answer_with(410);
    env.push
        .notify("event-1", &[like(&user, "post-1", "Taro")])
        .await
        .unwrap();
    env.drain().await;
    service.wait_for_attempts(1, WAIT).await.unwrap();
    assert_eq!(env.push.subscription_count(&user).await.unwrap(), 0);
    assert_eq!(env.count("SELECT COUNT(*) FROM bus_parked").await, 0);

    // Nothing is queued for it any more; the notification is still stored.
    env.push
        .notify("event-2", &[like(&user, "post-1", "Jiro")])
        .await
        .unwrap();
    env.drain().await;
    assert_eq!(service.attempts().len(), 1);
    assert_eq!(env.push.unread_count(&user).await.unwrap(), 1);
}

async fn a_failing_push_service_is_retried_after_a_backoff(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let (user, other) = (UserId::generate(), UserId::generate());
    register(&env, &user, &service).await;
    register(&env, &other, &service).await;
    service.answer_with(500);
    env.push
        .notify(
            "event-1",
            &[
                like(&user, "post-1", "Taro"),
                like(&other, "post-2", "Taro"),
            ],
        )
        .await
        .unwrap();
    env.drain().await;
    service.wait_for_attempts(2, WAIT).await.unwrap();
    assert!(service.deliveries().is_empty());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM bus_parked WHERE status = 'pending'")
            .await,
        2
    );

    // The retry waits for its backoff: nothing is sent before it is due.
    service.answer_with(201);
    env.drain().await;
    assert_eq!(service.attempts().len(), 2);
    env.clock.advance(Duration::from_secs(1));
    env.drain().await;
    let deliveries = service.wait_for_deliveries(2, WAIT).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(service.attempts().len(), 4, "each push sent again once");
    assert_eq!(env.count("SELECT COUNT(*) FROM bus_parked").await, 0);
    assert_eq!(env.push.subscription_count(&user).await.unwrap(), 1);
}

async fn a_push_the_push_service_refuses_is_dropped(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let user = UserId::generate();
    register(&env, &user, &service).await;
    service.answer_with(400);
    env.push
        .notify("event-1", &[like(&user, "post-1", "Taro")])
        .await
        .unwrap();
    env.drain().await;
    service.wait_for_attempts(1, WAIT).await.unwrap();
    env.clock.advance(Duration::from_secs(600));
    env.drain().await;
    assert_eq!(service.attempts().len(), 1, "not retried");
    assert_eq!(env.count("SELECT COUNT(*) FROM bus_parked").await, 0);
    assert_eq!(env.push.subscription_count(&user).await.unwrap(), 1);
}

async fn a_notice_that_comes_again_sends_nothing_again(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let user = UserId::generate();
    register(&env, &user, &service).await;
    let notice = like(&user, "post-1", "Taro");
    env.push
        .notify("event-1", std::slice::from_ref(&notice))
        .await
        .unwrap();
    env.push.notify("event-1", &[notice]).await.unwrap();
    env.drain().await;
    service.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(service.attempts().len(), 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM outbox").await, 1);
    let page = env.push.notifications(&user, None, 20).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].actor_count, 1);
    assert_eq!(page.unread_count, 1);
}

async fn every_browser_of_many_notices_gets_its_push_queued(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let user = UserId::generate();
    for _ in 0..matsuri_push::MAX_SUBSCRIPTIONS_PER_USER {
        register(&env, &user, &service).await;
    }
    let notices: Vec<_> = (0..30)
        .map(|i| like(&user, &format!("post-{i}"), "Taro"))
        .collect();
    env.push.notify("event-1", &notices).await.unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM outbox WHERE topic = 'push.queued'")
            .await,
        30 * matsuri_push::MAX_SUBSCRIPTIONS_PER_USER
    );
    assert_eq!(env.push.unread_count(&user).await.unwrap(), 30);
}

backend_tests!(
    every_browser_of_many_notices_gets_its_push_queued,
    a_notice_reaches_every_browser_of_the_user_decrypted_and_signed,
    a_subscription_the_push_service_calls_gone_is_removed,
    a_failing_push_service_is_retried_after_a_backoff,
    a_push_the_push_service_refuses_is_dropped,
    a_notice_that_comes_again_sends_nothing_again,
);
