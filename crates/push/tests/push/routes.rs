//! The routes as a client sees them, through the same authentication middleware the
//! server puts in front of them, and their OpenAPI declarations.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use matsuri_core::auth::authenticate;
use matsuri_core::ids::UserId;
use matsuri_core::{Clock, Role, SystemClock, TokenKeys};
use matsuri_module::Module;
use matsuri_push::PushModule;

use crate::backend_tests;
use crate::helpers::{Backend, TestPush, like};
use crate::push_service::TestPushService;

struct Api {
    app: Router,
    keys: Arc<TokenKeys>,
    openapi: Value,
}

impl Api {
    fn new(env: &TestPush) -> Self {
        let keys = Arc::new(TokenKeys::new(
            b"a-test-secret-that-is-long-enough-0123",
            3_600,
        ));
        let (router, openapi) = OpenApiRouter::new()
            .nest("/api/v1", PushModule(env.push.clone()).routes())
            .split_for_parts();
        let app = router.layer(axum::middleware::from_fn_with_state(
            keys.clone(),
            authenticate,
        ));
        Self {
            app,
            keys,
            openapi: serde_json::to_value(&openapi).unwrap(),
        }
    }

    fn token(&self, user: &UserId) -> String {
        self.keys
            .issue(user, Role::Customer, SystemClock.now_ms())
            .unwrap()
            .0
    }

    /// Sends a request (a JSON body when `body` is given) and answers the status and the
    /// JSON body, if any.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

async fn the_routes_answer_as_the_contract_says(backend: Backend) {
    let env = TestPush::start(backend).await;
    let api = Api::new(&env);
    let service = TestPushService::start().await.unwrap();
    let browser = service.subscribe().unwrap();
    let (user, other) = (UserId::generate(), UserId::generate());
    let (token, other_token) = (api.token(&user), api.token(&other));

    let (status, body) = api
        .call("GET", "/api/v1/push/vapid-public-key", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["key"], env.push.public_key());

    // Authentication is checked before the body is read.
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/push/subscriptions",
            None,
            Some("{not json"),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&token),
            Some("{not json"),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let subscription = |p256dh: &str| {
        json!({
            "endpoint": browser.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": p256dh, "auth": browser.auth },
        })
        .to_string()
    };
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&token),
            Some(&subscription("short")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["errors"][0]["field"], "keys.p256dh");

    let (status, created) = api
        .call(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&token),
            Some(&subscription(&browser.p256dh)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, again) = api
        .call(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&token),
            Some(&subscription(&browser.p256dh)),
        )
        .await;
    assert_eq!(
        (status, again["id"].as_str()),
        (StatusCode::CREATED, Some(id.as_str()))
    );

    let path = format!("/api/v1/push/subscriptions/{id}");
    let (status, body) = api.call("DELETE", &path, Some(&other_token), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = api.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    env.push
        .notify(
            "e1",
            &[
                like(&user, "post-1", "Aiko"),
                like(&user, "post-2", "Botan"),
            ],
        )
        .await
        .unwrap();
    let (status, _) = api.call("GET", "/api/v1/notifications", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api
        .call("GET", "/api/v1/notifications?limit=0", Some(&token), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    let (status, page) = api
        .call("GET", "/api/v1/notifications?limit=1", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["unread_count"], 2);
    let newest = &page["items"][0];
    for field in [
        "id",
        "kind",
        "subject_id",
        "actors",
        "actor_count",
        "text",
        "read",
        "created_at",
    ] {
        assert!(newest.get(field).is_some(), "{field} missing in {newest}");
    }
    assert_eq!(newest["kind"], "post_liked");
    assert_eq!(newest["subject_id"], "post-2");
    assert_eq!(
        newest["actors"],
        json!([{ "id": "id-of-Botan", "name": "Botan" }])
    );
    assert_eq!(newest["read"], false);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = api
        .call(
            "GET",
            &format!("/api/v1/notifications?limit=1&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["subject_id"], "post-1");
    assert_eq!(next["next_cursor"], Value::Null);

    let read = |up_to: &str| json!({ "up_to": up_to }).to_string();
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/notifications/read",
            Some(&token),
            Some(&read("unknown")),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let older = next["items"][0]["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/notifications/read",
            Some(&token),
            Some(&read(older)),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "unread_count": 1 }))
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/notifications/read",
            Some(&token),
            Some("{}"),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "unread_count": 0 }))
    );
}

async fn every_error_answer_is_declared_by_its_codes(backend: Backend) {
    let env = TestPush::start(backend).await;
    let api = Api::new(&env);
    let paths = api.openapi["paths"].as_object().unwrap();
    let mut declared: Vec<String> = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            declared.push(format!("{} {path}", method.to_uppercase()));
            assert_eq!(operation["tags"], json!(["push"]), "{method} {path}");
            for (status, answer) in operation["responses"].as_object().unwrap() {
                if status.as_str() < "400" {
                    continue;
                }
                let description = answer["description"].as_str().unwrap_or_default();
                for code in description
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                {
                    assert!(
                        code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                        "{method} {path} {status}: {description:?} is not a list of codes"
                    );
                }
            }
        }
    }
    declared.sort();
    let mut expected = [
        "DELETE /api/v1/push/subscriptions/{id}",
        "GET /api/v1/notifications",
        "GET /api/v1/push/vapid-public-key",
        "POST /api/v1/notifications/read",
        "POST /api/v1/push/subscriptions",
    ];
    expected.sort_unstable();
    assert_eq!(declared, expected);
}

backend_tests!(
    the_routes_answer_as_the_contract_says,
    every_error_answer_is_declared_by_its_codes,
);
