//! Who the caller is, and what they may do, is decided before the body is read: a request
//! without a token, with the wrong role or with a forged access token is turned away the
//! same whatever its body, so a caller who may not ask learns nothing about the rules.

use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::tickets::event_body;

crate::backend_tests!(
    no_token_wins_over_any_body,
    a_forged_access_token_wins_over_a_malformed_hold
);

/// Bodies that break, in turn, the JSON syntax, the types and the rules.
const BAD_BODIES: [&str; 3] = [
    "{not json",
    r#"{"seat_ids": "A-12", "amount": "lots"}"#,
    "{}",
];

async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut req = app
        .http
        .request(method, format!("{}/api/v1{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

async fn no_token_wins_over_any_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let fan = app.register("first@example.com").await;
    let id = uuid::Uuid::now_v7().to_string();
    let with_body = [
        (Method::POST, "/cart/items".to_owned(), false),
        (Method::PATCH, format!("/cart/items/{id}"), false),
        (Method::POST, "/orders".to_owned(), false),
        (Method::POST, format!("/events/{id}/reservations"), false),
        (Method::POST, format!("/reservations/{id}/payment"), false),
        (Method::POST, "/wallet/charge".to_owned(), false),
        (Method::POST, "/admin/products".to_owned(), true),
        (Method::PUT, format!("/admin/products/{id}/stock"), true),
        (Method::POST, "/admin/events".to_owned(), true),
        (Method::POST, "/admin/tickets/verify".to_owned(), true),
    ];
    for (method, path, staff_only) in with_body {
        for body in BAD_BODIES {
            let (status, code) = send_raw(&app, method.clone(), &path, None, &[], body).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{method} {path} {body}"
            );
            let (status, code) =
                send_raw(&app, method.clone(), &path, Some("forged"), &[], body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {body}: {code}"
            );
            if staff_only {
                let (status, code) =
                    send_raw(&app, method.clone(), &path, Some(&fan), &[], body).await;
                assert_eq!(
                    (status, code.as_str()),
                    (StatusCode::FORBIDDEN, "forbidden"),
                    "a customer: {method} {path} {body}"
                );
            }
        }
    }
}

async fn a_forged_access_token_wins_over_a_malformed_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    let event = app
        .create_event(event_body(&[("A", 1, 4, 1_000)], 1, 600))
        .await;
    let admitted = app.register("admitted@example.com").await;
    let waiting = app.register("waiting@example.com").await;
    let access = app.admitted(&admitted, &event).await;
    let join = app
        .request(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&waiting),
            None,
        )
        .await;
    assert_eq!(join.status, StatusCode::CREATED, "{}", join.text);
    let path = format!("/events/{event}/reservations");
    for body in BAD_BODIES {
        let forged = [("X-Access-Token", "forged.access.token")];
        let (status, code) =
            send_raw(&app, Method::POST, &path, Some(&admitted), &forged, body).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "access_token_invalid"),
            "{body}"
        );
        let (status, code) = send_raw(&app, Method::POST, &path, Some(&waiting), &[], body).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "not_admitted"),
            "{body}"
        );
        // With a valid admission the body is read, and refused for what it is.
        let own = [("X-Access-Token", access.as_str())];
        let (status, _) = send_raw(&app, Method::POST, &path, Some(&admitted), &own, body).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {status}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM reservations").await, 0);
}
