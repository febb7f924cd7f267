//! Likes: exact counts under a storm, idempotent PUT and DELETE, one gathered
//! notification per post, and the author told live on another node.

use reqwest::Method;
use serde_json::{Value, json};

use crate::chat::support::{Ws, person, run_bus};
use crate::helpers::{Backend, spawn_app};

crate::backend_tests!(
    a_storm_of_likes_and_unlikes_keeps_the_count_exact,
    likes_are_idempotent_and_checked,
    an_offline_author_gets_a_web_push
);

async fn post(app: &crate::helpers::TestApp, token: &str, text: &str) -> String {
    let res = app.post("/posts", Some(token), json!({"text": text})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["id"].as_str().unwrap().to_owned()
}

async fn like(app: &crate::helpers::TestApp, token: &str, id: &str, method: Method) -> Value {
    let res = app
        .request(method, &format!("/posts/{id}/like"), Some(token), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body
}

async fn a_storm_of_likes_and_unlikes_keeps_the_count_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = person(&app, "author@likes.test").await;
    let id = post(&app, &author.token, "a hot post").await;
    let fans = app.register_crowd("liker", 2_000).await;
    // 500 requests in flight at once: a storm for the writers, within what one
    // listener's backlog takes on a loaded machine (2,000 connects at once overflowed it).
    let all = |range: std::ops::Range<usize>, method: Method| {
        use futures::StreamExt;
        let (app, fans, id) = (&app, &fans, &id);
        futures::stream::iter(range.map(move |i| like(app, &fans[i], id, method.clone())))
            .buffer_unordered(500)
            .collect::<Vec<_>>()
    };
    all(0..2_000, Method::PUT).await;
    all(0..1_000, Method::DELETE).await;
    all(0..500, Method::PUT).await;
    let rows = app.count("SELECT COUNT(*) FROM post_likes").await;
    assert_eq!(rows, 1_500);
    let shown = app.get(&format!("/posts/{id}"), None).await;
    assert_eq!(shown.body["like_count"], 1_500, "{}", shown.text);

    while app.components.bus.run_once().await.unwrap() > 0 {}
    let listed = app.get("/notifications", Some(&author.token)).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one gathered entry: {}", listed.text);
    assert_eq!(items[0]["kind"], "post_liked");
    assert_eq!(
        items[0]["actor_count"], 2_000,
        "each liker once, not again after unlike and like"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM post_like_notices").await,
        2_000
    );
}

async fn likes_are_idempotent_and_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = person(&app, "ann@like.test").await;
    let bob = person(&app, "bob@like.test").await;
    let id = post(&app, &ann.token, "hello").await;
    for _ in 0..2 {
        let state = like(&app, &bob.token, &id, Method::PUT).await;
        assert_eq!(
            state,
            json!({"post_id": id, "liked": true, "like_count": 1})
        );
    }
    let mine = app.get(&format!("/posts/{id}"), Some(&bob.token)).await;
    assert_eq!(mine.body["liked_by_me"], true);
    let likers = app.get(&format!("/posts/{id}/likes"), None).await;
    assert_eq!(likers.body["items"][0]["user"]["id"], bob.id.as_str());
    for _ in 0..2 {
        let state = like(&app, &bob.token, &id, Method::DELETE).await;
        assert_eq!(
            state,
            json!({"post_id": id, "liked": false, "like_count": 0})
        );
    }
    // Liking one's own post counts and notifies nobody: Bob's first like is the only
    // one that told Ann, and his second did not tell her again.
    like(&app, &ann.token, &id, Method::PUT).await;
    like(&app, &bob.token, &id, Method::PUT).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE topic = 'post.liked'")
            .await,
        1
    );

    let missing = uuid::Uuid::now_v7();
    let res = app
        .request(
            Method::PUT,
            &format!("/posts/{missing}/like"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(res.status, 404);
    let res = app
        .request(Method::PUT, &format!("/posts/{id}/like"), None, None)
        .await;
    assert_eq!(res.status, 401);
    let res = app
        .request(
            Method::DELETE,
            &format!("/posts/{id}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(res.status, 404, "another user's post is not found");
    let res = app
        .request(
            Method::DELETE,
            &format!("/posts/{id}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(app.get(&format!("/posts/{id}"), None).await.status, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM post_likes").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM posts").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_author_hears_of_a_like_on_another_node() {
    let Some(backend) = Backend::postgres_redis() else {
        return;
    };
    let one = spawn_app(backend).await;
    let two = one.spawn_peer().await;
    let _bus = run_bus(&one);
    let author = person(&one, "author@live.test").await;
    let fan = person(&one, "fan@live.test").await;
    let id = post(&one, &author.token, "live").await;
    let mut ws = Ws::connect(&two, &author.token).await;
    ws.alive().await;
    like(&one, &fan.token, &id, Method::PUT).await;
    let frame = ws.next_of("notification").await;
    assert_eq!(frame["kind"], "post_liked");
    assert_eq!(frame["subject_id"], id.as_str());
    assert_eq!(frame["actors"][0]["id"], fan.id.as_str());
}

async fn an_offline_author_gets_a_web_push(backend: Backend) {
    let app =
        crate::helpers::spawn_app_with(backend, |s| s.push.allow_insecure_endpoints = true).await;
    let service = crate::chat::push_service::TestPushService::start()
        .await
        .unwrap();
    let browser = service.subscribe().unwrap();
    let author = person(&app, "author@away.test").await;
    let fan = person(&app, "fan@away.test").await;
    let res = app
        .post(
            "/push/subscriptions",
            Some(&author.token),
            json!({"endpoint": browser.endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = post(&app, &author.token, "while you were away").await;
    like(&app, &fan.token, &id, Method::PUT).await;
    let _bus = run_bus(&app);
    let pushes = service
        .wait_for_deliveries(1, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        pushes[0].payload["kind"], "post_liked",
        "{:?}",
        pushes[0].payload
    );
    assert_eq!(pushes[0].payload["url"], format!("/posts/{id}"));
    assert!(service.refusals().is_empty());
}
