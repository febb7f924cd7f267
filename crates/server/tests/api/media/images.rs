//! Owners' images: another user sees and deletes nothing of them (404); titles and tags
//! are set and checked; the list filters by tag, format, width and text and pages newest
//! first; delete removes the original and the variants.

use reqwest::Method;
use serde_json::json;

use super::support::{fetch, media_app, originals, small_jpeg, uploaded, variants};
use crate::helpers::Backend;

crate::media_backend_tests!(
    another_user_sees_nothing,
    titles_and_tags_filter_the_list,
    delete_removes_everything,
    posts_attach_their_authors_processed_images,
);

async fn another_user_sees_nothing(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let owner = app.register("owner@test.localhost").await;
    let other = app.register("stranger@test.localhost").await;
    let image = uploaded(&app, &owner, "mine.jpg", "image/jpeg", small_jpeg(50, 50)).await;
    let id = image["id"].as_str().unwrap();
    let path = format!("/images/{id}");
    assert_eq!(app.get(&path, Some(&other)).await.status, 404);
    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(&other),
            Some(json!({"title": "stolen"})),
        )
        .await;
    assert_eq!(patched.status, 404);
    let deleted = app.request(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(deleted.status, 404);
    let listed = app.get("/images", Some(&other)).await;
    assert_eq!(listed.body["items"], json!([]));
    assert_eq!(app.get(&path, None).await.status, 401);
    let mine = app.get(&path, Some(&owner)).await;
    assert_eq!(mine.body["title"], serde_json::Value::Null, "unchanged");
}

async fn titles_and_tags_filter_the_list(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("curator@test.localhost").await;
    let wide = uploaded(
        &app,
        &token,
        "Beach_Day.jpg",
        "image/jpeg",
        small_jpeg(900, 300),
    )
    .await;
    let tall = uploaded(
        &app,
        &token,
        "tower.jpg",
        "image/jpeg",
        small_jpeg(200, 600),
    )
    .await;
    let (wide_id, tall_id) = (wide["id"].as_str().unwrap(), tall["id"].as_str().unwrap());

    let patched = app
        .request(
            Method::PATCH,
            &format!("/images/{wide_id}"),
            Some(&token),
            Some(json!({"title": "夏祭り at the beach", "tags": ["Summer", "summer ", "sea"]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["tags"],
        json!(["summer", "sea"]),
        "tags once each, in lower case"
    );
    assert_eq!(patched.body["title"], "夏祭り at the beach");
    for bad in [
        json!({"title": "x".repeat(201)}),
        json!({"title": ""}),
        json!({"tags": ["ok", ""]}),
        json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"tags": ["a\u{0}b"]}),
    ] {
        let res = app
            .request(
                Method::PATCH,
                &format!("/images/{wide_id}"),
                Some(&token),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text);
    }
    let unchanged = app.get(&format!("/images/{wide_id}"), Some(&token)).await;
    assert_eq!(unchanged.body["tags"], json!(["summer", "sea"]));
    let cleared = app
        .request(
            Method::PATCH,
            &format!("/images/{tall_id}"),
            Some(&token),
            Some(json!({"title": null})),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["title"], serde_json::Value::Null);

    let ids = |query: &str| {
        let app = &app;
        let token = token.clone();
        let query = query.to_owned();
        async move {
            let res = app.get(&format!("/images{query}"), Some(&token)).await;
            assert_eq!(res.status, 200, "{query}: {}", res.text);
            res.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("").await, [tall_id, wide_id], "newest first");
    assert_eq!(ids("?tag=SUMMER").await, [wide_id]);
    assert_eq!(ids("?tag=winter").await, Vec::<String>::new());
    assert_eq!(ids("?format=jpeg&min_width=500").await, [wide_id]);
    assert_eq!(ids("?format=png").await, Vec::<String>::new());
    assert_eq!(
        ids("?q=%E5%A4%8F%E7%A5%AD").await,
        [wide_id],
        "text in the title"
    );
    assert_eq!(ids("?q=TOWER").await, [tall_id], "text in the file name");
    assert_eq!(
        ids("?q=100%25").await,
        Vec::<String>::new(),
        "a wildcard is a character"
    );
    assert_eq!(ids("?limit=1").await, [tall_id]);
    assert_eq!(ids(&format!("?limit=1&cursor={tall_id}")).await, [wide_id]);
    let bad_format = app.get("/images?format=gif", Some(&token)).await;
    assert_eq!(bad_format.status, 400, "not one of the formats");
    let bad_limit = app.get("/images?limit=0", Some(&token)).await;
    assert_eq!(bad_limit.status, 422);
}

async fn delete_removes_everything(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("tidy@test.localhost").await;
    let image = uploaded(&app, &token, "gone.jpg", "image/jpeg", small_jpeg(220, 160)).await;
    let id = image["id"].as_str().unwrap().to_owned();
    let upload_id: String = sqlx::query_scalar("SELECT upload_id FROM media_images WHERE id = $1")
        .bind(&id)
        .fetch_one(app.components.db.reader())
        .await
        .unwrap();
    assert!(originals(&app).head(&upload_id).await.unwrap().is_some());
    let deleted = app
        .request(Method::DELETE, &format!("/images/{id}"), Some(&token), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(
        app.get(&format!("/images/{id}"), Some(&token)).await.status,
        404
    );
    assert_eq!(
        originals(&app).head(&upload_id).await.unwrap(),
        None,
        "the original is gone"
    );
    for name in ["thumbnail", "medium", "large"] {
        assert_eq!(
            variants(&app)
                .head(&format!("{id}/{name}.webp"))
                .await
                .unwrap(),
            None
        );
        let (status, _, _) = fetch(&app, &format!("/images/{id}/{name}.webp"), &[]).await;
        assert_eq!(status, 404, "{name}");
    }
    let again = app
        .request(Method::DELETE, &format!("/images/{id}"), Some(&token), None)
        .await;
    assert_eq!(again.status, 404);
    super::support::drain(&app).await;
}

async fn posts_attach_their_authors_processed_images(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let author = app.register("poster@test.localhost").await;
    let other = app.register("borrower@test.localhost").await;
    let image = uploaded(&app, &author, "post.jpg", "image/jpeg", small_jpeg(64, 64)).await;
    let id = image["id"].as_str().unwrap();
    let pending =
        super::support::upload(&app, &author, "slow.jpg", "image/jpeg", small_jpeg(32, 32)).await;
    let pending_id = pending.body["image_id"].as_str().unwrap();
    for (token, image_id) in [
        (&other, id),
        (&author, pending_id),
        (&author, &uuid::Uuid::now_v7().to_string()),
        (&author, "not-an-id"),
    ] {
        let res = app
            .post(
                "/posts",
                Some(token),
                json!({"text": "look", "image_id": image_id}),
            )
            .await;
        assert_eq!(res.status, 422, "{image_id}: {}", res.text);
        assert_eq!(res.body["errors"][0]["field"], "image_id");
    }
    let posted = app
        .post(
            "/posts",
            Some(&author),
            json!({"text": "look", "image_id": id}),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(posted.body["image_id"], id);
    assert_eq!(app.count("SELECT COUNT(*) FROM posts").await, 1);
    super::support::drain(&app).await;
}
