//! Subscriptions: what an endpoint and its keys must be, one registration per endpoint
//! and user, the per-user limit, and removal.

use matsuri_core::ids::UserId;
use matsuri_push::{MAX_SUBSCRIPTIONS_PER_USER, PushError};

use crate::backend_tests;
use crate::helpers::{Backend, TestPush};
use crate::push_service::TestPushService;

/// The fields a refusal names.
fn fields(result: Result<String, PushError>) -> Vec<String> {
    match result {
        Err(PushError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

async fn private_and_plain_http_endpoints_are_refused(backend: Backend) {
    let env = TestPush::start_with(backend, |_| {}).await;
    let service = TestPushService::start().await.unwrap();
    let browser = service.subscribe().unwrap();
    let user = UserId::generate();
    for endpoint in [
        browser.endpoint.as_str(),
        "http://push.example.net/send/abc",
        "https://127.0.0.1/send/abc",
        "https://10.0.0.1/send/abc",
        "https://[::1]/send/abc",
        "https://[::ffff:169.254.169.254]/send/abc",
        "https://localhost/send/abc",
        "not a url",
    ] {
        let refused = env
            .push
            .subscribe(&user, endpoint, &browser.p256dh, &browser.auth)
            .await;
        assert_eq!(fields(refused), ["endpoint"], "{endpoint}");
    }
    assert_eq!(env.push.subscription_count(&user).await.unwrap(), 0);
}

async fn keys_must_be_a_browsers_keys(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let browser = service.subscribe().unwrap();
    let user = UserId::generate();
    let refused = env
        .push
        .subscribe(&user, &browser.endpoint, &browser.auth, &browser.p256dh)
        .await;
    assert_eq!(fields(refused), ["keys.p256dh", "keys.auth"]);
    let refused = env
        .push
        .subscribe(&user, "ftp://x", "", &browser.auth)
        .await;
    assert_eq!(fields(refused), ["endpoint", "keys.p256dh"]);
    // Padding is optional.
    let padded = format!("{}==", browser.auth);
    assert!(
        env.push
            .subscribe(&user, &browser.endpoint, &browser.p256dh, &padded)
            .await
            .is_ok()
    );
}

async fn an_endpoint_is_registered_once_per_user(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let (first, renewed) = (service.subscribe().unwrap(), service.subscribe().unwrap());
    let (user, other) = (UserId::generate(), UserId::generate());
    let id = env
        .push
        .subscribe(&user, &first.endpoint, &first.p256dh, &first.auth)
        .await
        .unwrap();
    // The same endpoint with new keys keeps its id and takes the keys.
    let again = env
        .push
        .subscribe(&user, &first.endpoint, &renewed.p256dh, &renewed.auth)
        .await
        .unwrap();
    assert_eq!(again, id);
    let stored: String = sqlx::query_scalar("SELECT p256dh FROM push_subscriptions WHERE id = $1")
        .bind(&id)
        .fetch_one(env.db.reader())
        .await
        .unwrap();
    assert_eq!(stored, renewed.p256dh);
    // Another user's registration of it is theirs.
    let theirs = env
        .push
        .subscribe(&other, &first.endpoint, &first.p256dh, &first.auth)
        .await
        .unwrap();
    assert_ne!(theirs, id);

    assert!(matches!(
        env.push.unsubscribe(&other, &id).await,
        Err(PushError::SubscriptionNotFound)
    ));
    env.push.unsubscribe(&user, &id).await.unwrap();
    assert!(matches!(
        env.push.unsubscribe(&user, &id).await,
        Err(PushError::SubscriptionNotFound)
    ));
    assert_eq!(env.push.subscription_count(&other).await.unwrap(), 1);
}

async fn a_user_has_a_bounded_number_of_subscriptions(backend: Backend) {
    let env = TestPush::start(backend).await;
    let service = TestPushService::start().await.unwrap();
    let user = UserId::generate();
    let browsers: Vec<_> = (0..=MAX_SUBSCRIPTIONS_PER_USER)
        .map(|_| service.subscribe().unwrap())
        .collect();
    // Registered at once: the limit holds under concurrency too.
    let tasks: Vec<_> = browsers
        .iter()
        .cloned()
        .map(|b| {
            let (push, user) = (env.push.clone(), user.clone());
            tokio::spawn(
                async move { push.subscribe(&user, &b.endpoint, &b.p256dh, &b.auth).await },
            )
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(PushError::TooManySubscriptions)))
        .count();
    assert_eq!(refused, 1);
    assert_eq!(
        env.push.subscription_count(&user).await.unwrap(),
        MAX_SUBSCRIPTIONS_PER_USER
    );
    // Renewing one the user has is still allowed.
    let kept = browsers
        .iter()
        .zip(&results)
        .find(|(_, r)| r.is_ok())
        .map(|(b, _)| b)
        .unwrap();
    assert!(
        env.push
            .subscribe(&user, &kept.endpoint, &kept.p256dh, &kept.auth)
            .await
            .is_ok()
    );
}

backend_tests!(
    private_and_plain_http_endpoints_are_refused,
    keys_must_be_a_browsers_keys,
    an_endpoint_is_registered_once_per_user,
    a_user_has_a_bounded_number_of_subscriptions,
);
