//! The web UI's foundation: pages with a strict policy, the session cookie out of reach
//! of scripts, and no change made with the cookie without the page's CSRF token.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};

use crate::helpers::{Backend, TestApp, spawn_app};

crate::backend_tests!(
    pages_answer_with_a_strict_policy,
    the_session_cookie_needs_the_csrf_token_to_change_things
);

/// A form body, as a browser posts it.
fn form(builder: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    builder
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Signs up through the form and answers the session cookie it set.
async fn sign_up(app: &TestApp, email: &str) -> String {
    let res = form(
        browser().post(format!("{}/register", app.base)),
        &[
            ("name", "Hanako"),
            ("email", email),
            ("password", "long enough"),
            ("next", "/cart"),
        ],
    )
    .send()
    .await
    .expect("an answer");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/cart");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("matsuri_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

async fn pages_answer_with_a_strict_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/", "/login", "/register", "/products/x"] {
        let res = browser()
            .get(format!("{}{path}", app.base))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let policy = res.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let html = res.text().await.unwrap();
        assert!(html.contains("<html lang=\"en\">"), "{path}");
        assert!(!html.contains("<script>"), "no inline script on {path}");
    }
    let japanese = browser()
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        japanese
            .text()
            .await
            .unwrap()
            .contains("<html lang=\"ja\">")
    );
    // A private page sends a visitor to sign in, and back.
    let cart = browser()
        .get(format!("{}/cart", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(cart.status(), StatusCode::SEE_OTHER);
    assert_eq!(cart.headers()[LOCATION], "/login?next=/cart");
    // A sign-in form never sends anyone to another site.
    let res = form(
        browser().post(format!("{}/register", app.base)),
        &[
            ("name", "Eve"),
            ("email", "eve@example.com"),
            ("password", "long enough"),
            ("next", "//evil.example"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.headers()[LOCATION], "/");
    // A refused field is named in the page's language.
    let res = form(
        browser()
            .post(format!("{}/register", app.base))
            .header("accept-language", "ja"),
        &[
            ("name", "花子"),
            ("email", "nope"),
            ("password", "long enough"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("メールアドレス: name@example.com のような形で入力してください"),
        "{html}"
    );
}

async fn the_session_cookie_needs_the_csrf_token_to_change_things(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("TEE", 1_000, 5).await;
    let session = sign_up(&app, "web@example.com").await;
    let me = browser()
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "reads need no CSRF token");
    let staff_page = browser()
        .get(format!("{}/staff/consumers", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        staff_page.status(),
        StatusCode::FORBIDDEN,
        "a customer on a staff page"
    );

    let page = browser()
        .get(format!("{}/cart", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(csrf.len(), 64, "{page}");

    let add = |token: Option<String>| {
        let mut req = browser()
            .post(format!("{}/api/v1/cart/items", app.base))
            .header("cookie", &session)
            .json(&serde_json::json!({"product_id": product, "quantity": 1}));
        if let Some(token) = token {
            req = req.header("x-csrf-token", token);
        }
        req.send()
    };
    let forged = "0".repeat(64);
    for token in [None, Some(forged), Some("not hex".to_owned())] {
        let res = add(token.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM cart_items").await, 0);
    let res = add(Some(csrf.clone())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.count("SELECT COUNT(*) FROM cart_items").await, 1);

    // Signing out needs the token too; then the cookie is cleared.
    let out = |token: &str| {
        form(
            browser()
                .post(format!("{}/logout", app.base))
                .header("cookie", &session),
            &[("csrf", token)],
        )
        .send()
    };
    assert_eq!(out("forged").await.unwrap().status(), StatusCode::FORBIDDEN);
    let res = out(&csrf).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
