//! Uploads: the presigned URL takes only the upload it was signed for; complete checks the
//! stored object before anything exists and refuses (and deletes) what was not declared;
//! completing at once from many tasks makes one image; abandoned uploads are swept.

use std::time::Duration;

use serde_json::json;

use super::support::{drain, media_app, originals, presign, put, small_jpeg, upload};
use crate::helpers::Backend;

crate::media_backend_tests!(
    bad_requests_change_nothing,
    the_url_takes_only_what_was_signed,
    complete_checks_what_was_stored,
    completing_at_once_makes_one_image,
    uploads_are_rate_limited,
    abandoned_uploads_are_swept,
);

async fn bad_requests_change_nothing(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("uploader@test.localhost").await;
    let unauthenticated = app
        .post(
            "/uploads/presigned-url",
            None,
            json!({"filename": "a.jpg", "content_type": "image/gif", "size": 0}),
        )
        .await;
    assert_eq!(unauthenticated.status, 401, "authentication comes first");
    for (filename, content_type, size, field) in [
        ("a.gif", "image/gif", 10, "content_type"),
        ("a.svg", "image/svg+xml", 10, "content_type"),
        ("a.jpg", "image/jpeg", 0, "size"),
        ("a.jpg", "image/jpeg", 20 * 1024 * 1024 + 1, "size"),
        ("", "image/jpeg", 10, "filename"),
        ("a\u{7}.jpg", "image/jpeg", 10, "filename"),
    ] {
        let res = presign(&app, &token, filename, content_type, size).await;
        assert_eq!(
            res.status, 422,
            "{filename} {content_type} {size}: {}",
            res.text
        );
        assert_eq!(res.code(), "validation_failed");
        assert_eq!(res.body["errors"][0]["field"], field, "{}", res.text);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM media_uploads").await, 0);
    let unknown = app
        .post(
            &format!("/uploads/{}/complete", uuid::Uuid::now_v7()),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let garbage = app
        .post("/uploads/nope/complete", Some(&token), json!({}))
        .await;
    assert_eq!(garbage.status, 404);
}

async fn the_url_takes_only_what_was_signed(backend: Backend, s3: Option<String>) {
    let on_s3 = s3.is_some();
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("signed@test.localhost").await;
    let photo = small_jpeg(64, 48);
    let ticket = presign(&app, &token, "photo.jpg", "image/jpeg", photo.len()).await;
    assert_eq!(ticket.status, 201, "{}", ticket.text);
    assert_eq!(ticket.body["method"], "PUT");
    let url = ticket.body["url"].as_str().unwrap().to_owned();
    let id = ticket.body["upload_id"].as_str().unwrap().to_owned();
    let expires =
        matsuri_core::timefmt::parse_rfc3339(ticket.body["expires_at"].as_str().unwrap()).unwrap();
    let lifetime = expires - matsuri_core::Clock::now_ms(app.clock.as_ref());
    assert!(
        (899_000..=900_000).contains(&lifetime),
        "15 minutes: {lifetime} ms"
    );

    let store = originals(&app);
    assert_eq!(
        put(&app, &url, "image/png", photo.clone()).await,
        403,
        "another content type"
    );
    let forged = tampered(&url);
    assert_eq!(
        put(&app, &forged, "image/jpeg", photo.clone()).await,
        403,
        "a tampered signature"
    );
    assert_eq!(store.head(&id).await.unwrap(), None, "nothing was stored");
    if !on_s3 {
        let mut bigger = photo.clone();
        bigger.push(0);
        assert_eq!(
            put(&app, &url, "image/jpeg", bigger).await,
            413,
            "more than declared"
        );
        let other = url.replace(&id, &uuid::Uuid::now_v7().to_string());
        assert_eq!(
            put(&app, &other, "image/jpeg", photo.clone()).await,
            404,
            "another upload"
        );
    }
    assert_eq!(put(&app, &url, "image/jpeg", photo.clone()).await, 200);
    assert_eq!(
        store.head(&id).await.unwrap().map(|m| m.size),
        Some(photo.len() as u64)
    );

    let done = app
        .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
        .await;
    assert_eq!(done.status, 202, "{}", done.text);
    if !on_s3 {
        assert_eq!(
            put(&app, &url, "image/jpeg", photo.clone()).await,
            403,
            "a completed upload takes no other file"
        );
        // The folder's URL expires by the server's clock; S3's by the wall clock, which
        // the blob port's own story checks.
        let late = presign(&app, &token, "late.jpg", "image/jpeg", photo.len()).await;
        app.clock.advance(Duration::from_secs(901));
        let late_url = late.body["url"].as_str().unwrap();
        assert_eq!(
            put(&app, late_url, "image/jpeg", photo).await,
            403,
            "an expired URL"
        );
    }
}

async fn complete_checks_what_was_stored(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("checked@test.localhost").await;
    let store = originals(&app);

    // Nothing put yet: missing, and the upload stays open.
    let photo = small_jpeg(32, 32);
    let ticket = presign(&app, &token, "later.jpg", "image/jpeg", photo.len()).await;
    let id = ticket.body["upload_id"].as_str().unwrap().to_owned();
    let early = app
        .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
        .await;
    assert_eq!(early.status, 409);
    assert_eq!(early.code(), "upload_missing");
    let other = app.register("other-uploader@test.localhost").await;
    let theirs = app
        .post(&format!("/uploads/{id}/complete"), Some(&other), json!({}))
        .await;
    assert_eq!(theirs.status, 404, "another user's upload is not found");
    assert_eq!(
        put(
            &app,
            ticket.body["url"].as_str().unwrap(),
            "image/jpeg",
            photo
        )
        .await,
        200
    );
    let later = app
        .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
        .await;
    assert_eq!(later.status, 202, "{}", later.text);

    // A text file called .jpg, and a PNG declared as a JPEG: refused, deleted, closed.
    for (name, bytes, why) in [
        (
            "notes.jpg",
            b"just some text, not a photo at all".to_vec(),
            "is not a JPEG",
        ),
        (
            "disguised.jpg",
            png_bytes(),
            "is png, not the jpeg declared",
        ),
    ] {
        let ticket = presign(&app, &token, name, "image/jpeg", bytes.len()).await;
        let id = ticket.body["upload_id"].as_str().unwrap().to_owned();
        assert_eq!(
            put(
                &app,
                ticket.body["url"].as_str().unwrap(),
                "image/jpeg",
                bytes
            )
            .await,
            200
        );
        let refused = app
            .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
            .await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.text);
        assert_eq!(refused.body["errors"][0]["field"], "file");
        let message = refused.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{name}: {message}");
        assert_eq!(
            store.head(&id).await.unwrap(),
            None,
            "{name}: the object is deleted"
        );
        let again = app
            .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
            .await;
        assert_eq!(
            again.code(),
            "upload_missing",
            "{name}: a refused upload stays refused"
        );
    }

    // More bytes than declared (S3 cannot refuse them at the PUT; complete does).
    if app.settings.blob_url.is_some() {
        let photo = small_jpeg(40, 40);
        let ticket = presign(&app, &token, "short.jpg", "image/jpeg", 100).await;
        let id = ticket.body["upload_id"].as_str().unwrap().to_owned();
        assert_eq!(
            put(
                &app,
                ticket.body["url"].as_str().unwrap(),
                "image/jpeg",
                photo
            )
            .await,
            200
        );
        let refused = app
            .post(&format!("/uploads/{id}/complete"), Some(&token), json!({}))
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        let message = refused.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("more than the 100 declared"), "{message}");
        assert_eq!(store.head(&id).await.unwrap(), None);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM media_images").await, 1);
}

/// The URL with the first character of its signature changed (S3's `X-Amz-Signature`
/// in hex, or the folder's `signature` in base64).
fn tampered(url: &str) -> String {
    let at = url.find("ignature=").unwrap() + "ignature=".len();
    let mut bytes = url.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

/// A small real PNG.
fn png_bytes() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn completing_at_once_makes_one_image(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("eager@test.localhost").await;
    let photo = small_jpeg(48, 32);
    let ticket = presign(&app, &token, "eager.jpg", "image/jpeg", photo.len()).await;
    let id = ticket.body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(
        put(
            &app,
            ticket.body["url"].as_str().unwrap(),
            "image/jpeg",
            photo
        )
        .await,
        200
    );
    let path = format!("/uploads/{id}/complete");
    let answers =
        futures::future::join_all((0..24).map(|_| app.post(&path, Some(&token), json!({})))).await;
    let mut images: Vec<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 202, "{}", a.text);
            a.body["image_id"].as_str().unwrap().to_owned()
        })
        .collect();
    images.dedup();
    assert_eq!(images.len(), 1, "every complete answers the one image");
    assert_eq!(app.count("SELECT COUNT(*) FROM media_images").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE topic = 'image.uploaded'")
            .await,
        1,
        "one job"
    );
    drain(&app).await;
    let image = app
        .get(&format!("/images/{}", images[0]), Some(&token))
        .await;
    assert_eq!(image.body["status"], "completed", "{}", image.text);
}

async fn uploads_are_rate_limited(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |s| s.media.uploads_per_minute = 3).await;
    let token = app.register("busy@test.localhost").await;
    for _ in 0..3 {
        assert_eq!(
            presign(&app, &token, "a.jpg", "image/jpeg", 10)
                .await
                .status,
            201
        );
    }
    let limited = presign(&app, &token, "a.jpg", "image/jpeg", 10).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    let other = app.register("calm@test.localhost").await;
    assert_eq!(
        presign(&app, &other, "a.jpg", "image/jpeg", 10)
            .await
            .status,
        201
    );
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(
        presign(&app, &token, "a.jpg", "image/jpeg", 10)
            .await
            .status,
        201
    );
}

async fn abandoned_uploads_are_swept(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("forgetful@test.localhost").await;
    let store = originals(&app);
    let photo = small_jpeg(16, 16);
    let ticket = presign(&app, &token, "forgotten.jpg", "image/jpeg", photo.len()).await;
    let forgotten = ticket.body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(
        put(
            &app,
            ticket.body["url"].as_str().unwrap(),
            "image/jpeg",
            photo.clone()
        )
        .await,
        200
    );
    let kept = upload(&app, &token, "kept.jpg", "image/jpeg", photo).await;
    assert_eq!(kept.status, 202);

    let media = &app.components.media;
    assert_eq!(media.sweep_abandoned().await.unwrap(), 0, "not yet");
    app.clock
        .advance(Duration::from_secs(15 * 60 + 24 * 3_600 + 1));
    assert_eq!(media.sweep_abandoned().await.unwrap(), 1);
    assert_eq!(store.head(&forgotten).await.unwrap(), None);
    let late = app
        .post(
            &format!("/uploads/{forgotten}/complete"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(late.status, 404, "the upload is gone");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM media_uploads").await,
        1,
        "the completed one stays"
    );
}
