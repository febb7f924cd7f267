//! The worker: a photo ends with three WebP variants of the right sizes, served with a
//! year's immutable caching, a strong ETag, 304 and ranges; an unusable file ends
//! `failed` with its reason and nothing kept but the record; a worker stopped anywhere in
//! a job leaves it to run again, and the image completes once.

use serde_json::Value;

use super::support::{
    drain, fetch, media_app, originals, sample, small_jpeg, upload, uploaded, variants,
};
use crate::helpers::Backend;

crate::media_backend_tests!(
    a_photo_ends_with_three_variants,
    unusable_files_fail_with_their_reason,
    a_stopped_job_runs_again_and_completes_once,
    variants_can_redirect_to_the_bucket,
);

/// The dimensions of a WebP file, read by the `image` crate.
fn webp_size(bytes: &[u8]) -> (u32, u32) {
    let decoded = image::load_from_memory_with_format(bytes, image::ImageFormat::WebP)
        .expect("a WebP variant");
    (decoded.width(), decoded.height())
}

fn variant<'a>(image: &'a Value, name: &str) -> &'a Value {
    image["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} variant in {image}"))
}

async fn a_photo_ends_with_three_variants(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("photographer@test.localhost").await;
    let photo = sample("sunset_by_Aitzol_Berasategi.jpg");
    let bytes = photo.len() as u64;
    let image = uploaded(&app, &token, "sunset.jpg", "image/jpeg", photo).await;
    assert_eq!(image["status"], "completed", "{image}");
    assert_eq!(image["format"], "jpeg");
    assert_eq!(image["bytes"], bytes);
    assert_eq!(image["filename"], "sunset.jpg");
    let (width, height) = (
        image["width"].as_u64().unwrap() as u32,
        image["height"].as_u64().unwrap() as u32,
    );
    assert!(
        width > 1920 || height > 1920,
        "a big photo: {width}×{height}"
    );
    assert_eq!(image["variants"].as_array().unwrap().len(), 3);

    for (name, bound) in [("thumbnail", 100), ("medium", 800), ("large", 1920)] {
        let shown = variant(&image, name);
        let url = shown["url"].as_str().unwrap();
        let (status, headers, body) = fetch(&app, url, &[]).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(headers["content-type"], "image/webp");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(shown["bytes"], body.len() as u64);
        let (w, h) = webp_size(&body);
        assert_eq!(
            (
                shown["width"].as_u64().unwrap(),
                shown["height"].as_u64().unwrap()
            ),
            (u64::from(w), u64::from(h))
        );
        if name == "thumbnail" {
            assert_eq!((w, h), (100, 100), "cropped to fill");
        } else {
            assert_eq!(w.max(h), bound, "{name} fits inside {bound}");
            let kept = f64::from(w) / f64::from(h) - f64::from(width) / f64::from(height);
            assert!(kept.abs() < 0.01, "{name} keeps the aspect ratio");
        }
        assert!(
            !body.windows(4).any(|w| w == b"EXIF" || w == b"XMP "),
            "{name}: no metadata"
        );

        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "a strong ETag: {etag}"
        );
        let (again, again_headers, empty) = fetch(&app, url, &[("if-none-match", &etag)]).await;
        assert_eq!(again, 304);
        assert!(empty.is_empty());
        assert_eq!(again_headers["etag"], etag.as_str());
        let (part, part_headers, first) = fetch(&app, url, &[("range", "bytes=0-11")]).await;
        assert_eq!(part, 206);
        assert_eq!(first, body[..12]);
        assert_eq!(
            part_headers["content-range"],
            format!("bytes 0-11/{}", body.len()).as_str()
        );
        let (beyond, _, _) =
            fetch(&app, url, &[("range", &format!("bytes={}-", body.len()))]).await;
        assert_eq!(beyond, 416);
    }
    let (missing, _, _) = fetch(
        &app,
        &format!("/images/{}/huge.webp", image["id"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(missing, 404);

    // A small image keeps its size in the fitted variants: never enlarged.
    let small = uploaded(
        &app,
        &token,
        "small.jpg",
        "image/jpeg",
        small_jpeg(300, 200),
    )
    .await;
    assert_eq!(small["status"], "completed", "{small}");
    for name in ["medium", "large"] {
        let shown = variant(&small, name);
        assert_eq!(
            (shown["width"].as_u64(), shown["height"].as_u64()),
            (Some(300), Some(200))
        );
    }
    assert_eq!(variant(&small, "thumbnail")["width"], 100);
}

async fn unusable_files_fail_with_their_reason(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("unlucky@test.localhost").await;
    let photo = small_jpeg(400, 300);
    let truncated = photo[..photo.len() / 2].to_vec();
    for (name, content_type, bytes, reasons) in [
        (
            "bomb.png",
            "image/png",
            png_bomb(),
            &["too_many_pixels"][..],
        ),
        (
            "cut.jpg",
            "image/jpeg",
            truncated,
            &["truncated", "corrupt"][..],
        ),
    ] {
        let done = upload(&app, &token, name, content_type, bytes).await;
        assert_eq!(done.status, 202, "{name}: {}", done.text);
        let id = done.body["image_id"].as_str().unwrap().to_owned();
        drain(&app).await;
        let image = app.get(&format!("/images/{id}"), Some(&token)).await.body;
        assert_eq!(image["status"], "failed", "{name}: {image}");
        let reason = image["failure_reason"].as_str().unwrap();
        assert!(reasons.contains(&reason), "{name}: {reason}");
        assert_eq!(image["variants"], serde_json::json!([]));
        let upload_id: String =
            sqlx::query_scalar("SELECT upload_id FROM media_images WHERE id = $1")
                .bind(&id)
                .fetch_one(app.components.db.reader())
                .await
                .unwrap();
        assert_eq!(
            originals(&app).head(&upload_id).await.unwrap(),
            None,
            "{name}: the original is gone"
        );
        let (served, _, _) = fetch(&app, &format!("/images/{id}/thumbnail.webp"), &[]).await;
        assert_eq!(served, 404);
    }
}

/// A PNG whose header claims 100,000 × 100,000 pixels over a few bytes of data.
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend(100_000u32.to_be_bytes());
    header.extend(100_000u32.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn a_stopped_job_runs_again_and_completes_once(backend: Backend, s3: Option<String>) {
    let app = media_app(backend, s3, |_| {}).await;
    let token = app.register("interrupted@test.localhost").await;
    let media = app.components.media.clone();
    // Stop the job at many points: before it read anything, while it decodes, while it
    // stores, after it stored.
    for stop_after_ms in [0u64, 2, 5, 10, 20, 40, 80, 160] {
        let done = upload(
            &app,
            &token,
            "again.jpg",
            "image/jpeg",
            small_jpeg(1200, 900),
        )
        .await;
        assert_eq!(done.status, 202, "{}", done.text);
        let id = done.body["image_id"].as_str().unwrap().to_owned();
        let job = tokio::spawn({
            let (media, id) = (media.clone(), id.clone());
            async move { media.process(&id).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(stop_after_ms)).await;
        job.abort();
        let _ = job.await;
        // Delivered again: it completes, or finds it complete.
        media.process(&id).await.unwrap();
        let image = app.get(&format!("/images/{id}"), Some(&token)).await.body;
        assert_eq!(
            image["status"], "completed",
            "stopped after {stop_after_ms} ms: {image}"
        );
        let processed_at = || async {
            sqlx::query_scalar::<_, i64>("SELECT processed_at FROM media_images WHERE id = $1")
                .bind(&id)
                .fetch_one(app.components.db.reader())
                .await
                .unwrap()
        };
        let when = processed_at().await;
        assert_eq!(
            media.process(&id).await.unwrap(),
            matsuri_media::Outcome::Skipped,
            "completed once"
        );
        assert_eq!(processed_at().await, when);
        for name in ["thumbnail", "medium", "large"] {
            let key = format!("{id}/{name}.webp");
            assert!(variants(&app).head(&key).await.unwrap().is_some(), "{key}");
        }
    }
    // The queued jobs of those uploads find their images done.
    drain(&app).await;
}

async fn variants_can_redirect_to_the_bucket(backend: Backend, s3: Option<String>) {
    let redirect = "https://cdn.example.test/variants";
    let app = media_app(backend, s3, |s| {
        s.media.variants_redirect_url = Some(redirect.into());
        s.media.public_base_url = "https://img.example.test".into();
    })
    .await;
    let token = app.register("cdn@test.localhost").await;
    let photo = small_jpeg(120, 90);
    let ticket = super::support::presign(&app, &token, "cdn.jpg", "image/jpeg", photo.len()).await;
    // On the folder the upload URL goes through the public base too (the CDN passes it
    // on); here the test is its own CDN.
    let url = ticket.body["url"]
        .as_str()
        .unwrap()
        .replace("https://img.example.test", &app.base);
    assert_eq!(
        super::support::put(&app, &url, "image/jpeg", photo).await,
        200
    );
    let upload_id = ticket.body["upload_id"].as_str().unwrap();
    let done = app
        .post(
            &format!("/uploads/{upload_id}/complete"),
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    drain(&app).await;
    let id = done.body["image_id"].as_str().unwrap();
    let image = app.get(&format!("/images/{id}"), Some(&token)).await.body;
    let url = variant(&image, "medium")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        url,
        format!("https://img.example.test/images/{id}/medium.webp")
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/images/{id}/medium.webp", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{redirect}/{id}/medium.webp").as_str()
    );
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    // The pages may load images from the CDN and send uploads to it (and to the bucket).
    let page = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("img-src 'self' data: https://img.example.test https://cdn.example.test;"),
        "{policy}"
    );
    assert!(
        policy.contains(" https://img.example.test; font-src"),
        "{policy}"
    );
    if app.settings.blob_url.is_some() {
        assert!(
            policy.contains("connect-src 'self' http://127.0.0.1:"),
            "the bucket: {policy}"
        );
    }
}
