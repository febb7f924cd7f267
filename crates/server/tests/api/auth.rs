//! Users: register, login, me; tokens; roles.

use reqwest::StatusCode;
use serde_json::json;

use matsuri_core::Role;
use matsuri_core::ids::UserId;

use crate::helpers::{Backend, PASSWORD, spawn_app};

crate::backend_tests!(
    register_login_and_me,
    duplicate_and_invalid_registrations,
    bad_expired_and_missing_tokens,
    staff_routes_need_the_staff_role
);

async fn register_login_and_me(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post(
            "/auth/register",
            None,
            json!({"email": "Ann@Example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["user"]["email"], "ann@example.com");
    assert_eq!(res.body["user"]["role"], "customer");

    let login = app
        .post(
            "/auth/login",
            None,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body["token"].as_str().unwrap();
    let me = app.get("/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["name"], "Ann");
    assert_eq!(me.body["id"], res.body["user"]["id"]);
    assert!(me.body.get("password_hash").is_none());

    let wrong = app
        .post(
            "/auth/login",
            None,
            json!({"email": "ann@example.com", "password": "not-the-password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");
    let unknown = app
        .post(
            "/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.code(), "invalid_credentials");
}

async fn duplicate_and_invalid_registrations(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("dup@example.com").await;
    let again = app
        .post(
            "/auth/register",
            None,
            json!({"email": "DUP@example.com", "password": PASSWORD, "name": "Dup"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "email_taken");

    let invalid = app
        .post(
            "/auth/register",
            None,
            json!({"email": "not-an-email", "password": "short", "name": ""}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.code(), "validation_failed");
    assert_eq!(invalid.body["errors"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email <> 'staff@test.localhost'")
            .await,
        1
    );
}

async fn bad_expired_and_missing_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.register("t@example.com").await;
    assert_eq!(app.get("/me", Some(&token)).await.status, StatusCode::OK);

    let missing = app.get("/me", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "unauthorized");
    assert_eq!(missing.content_type, "application/problem+json");

    let garbage = app.get("/me", Some("not.a.token")).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        app.get("/me", Some(&tampered)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let two_days_ago = matsuri_core::Clock::now_ms(&matsuri_core::SystemClock) - 2 * 86_400_000;
    let (expired, _) = app
        .components
        .keys
        .issue(&UserId::generate(), Role::Customer, two_days_ago)
        .unwrap();
    let res = app.get("/me", Some(&expired)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.body["detail"].as_str().unwrap().contains("expired"));
}

async fn staff_routes_need_the_staff_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = app.register("c@example.com").await;
    let body = json!({"sku": "X-1", "name": "X", "price": 100, "stock": 1});
    let res = app
        .post("/admin/products", Some(&customer), body.clone())
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code(), "forbidden");
    assert_eq!(
        app.post("/admin/products", None, body.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let staff = app.staff_token().await;
    assert_eq!(
        app.post("/admin/products", Some(&staff), body).await.status,
        StatusCode::CREATED
    );
    let me = app.get("/me", Some(&staff)).await;
    assert_eq!(me.body["role"], "staff");
}
