//! The blob port's conformance story, on a folder always and on a real S3-compatible
//! server that checks signatures when `MATSURI_TEST_S3_URL` is set (in CI it must be):
//! objects round-trip, a missing one is `None`, a presigned PUT takes the right upload and
//! refuses another content type, a tampered signature and an expired URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use matsuri_blob::{Blobs, Meta};
use matsuri_core::config::child_url;
use reqwest::StatusCode;

/// The stores to run on, each under a prefix of its own.
fn stores(name: &str) -> Vec<(&'static str, Blobs, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = format!("file://{}", dir.path().join("blobs").display());
    let mut stores = vec![("file", Blobs::open(&folder).expect("a folder store"), dir)];
    if let Some(url) = matsuri_testkit::service_url("MATSURI_TEST_S3_URL") {
        let url = child_url(&url, &format!("{name}-{}", matsuri_testkit::unique_name()));
        let dir = tempfile::tempdir().expect("a temporary folder");
        stores.push(("s3", Blobs::open(&url).expect("an S3 store"), dir));
    }
    stores
}

#[tokio::test]
async fn objects_round_trip_and_missing_ones_are_none() {
    for (kind, blobs, _dir) in stores("round-trip") {
        let body = Bytes::from_static(b"\xff\xd8\xff\xe0 not really a photo");
        blobs.put("a/b.jpg", body.clone()).await.expect(kind);
        assert_eq!(
            blobs.get("a/b.jpg").await.expect(kind),
            Some(body.clone()),
            "{kind}"
        );
        assert_eq!(
            blobs.head("a/b.jpg").await.expect(kind),
            Some(Meta {
                size: body.len() as u64
            }),
            "{kind}"
        );
        assert_eq!(
            blobs.read_head("a/b.jpg", 4).await.expect(kind).as_deref(),
            Some(&b"\xff\xd8\xff\xe0"[..]),
            "{kind}"
        );
        assert_eq!(
            blobs.read_head("a/b.jpg", 1_000).await.expect(kind),
            Some(body),
            "{kind}: a short object is read whole"
        );
        blobs.delete("a/b.jpg").await.expect(kind);
        assert_eq!(blobs.get("a/b.jpg").await.expect(kind), None, "{kind}");
        assert_eq!(blobs.head("a/b.jpg").await.expect(kind), None, "{kind}");
        assert_eq!(
            blobs.read_head("a/b.jpg", 4).await.expect(kind),
            None,
            "{kind}"
        );
        blobs
            .delete("a/b.jpg")
            .await
            .expect("deleting twice is fine");
    }
}

#[tokio::test]
async fn a_folder_cannot_presign() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let blobs = Blobs::open(&format!("file://{}", dir.path().display())).expect("a folder");
    let url = blobs
        .presign_put("k", "image/png", Duration::from_secs(60))
        .await
        .expect("no error");
    assert_eq!(url, None);
    assert_eq!(blobs.direct_url("k"), None);
}

#[tokio::test]
async fn a_presigned_put_takes_only_what_was_signed() {
    let http = reqwest::Client::new();
    for (kind, blobs, _dir) in stores("presign") {
        if kind != "s3" {
            continue;
        }
        let put = |url: String, content_type: &'static str| {
            http.put(url)
                .header("content-type", content_type)
                .body(&b"\x89PNG\r\n\x1a\n"[..])
                .send()
        };
        let url = blobs
            .presign_put("up/right.png", "image/png", Duration::from_secs(60))
            .await
            .expect("a presigned URL")
            .expect("S3 signs");
        let wrong = put(url.clone(), "image/jpeg").await.expect("an answer");
        assert_eq!(
            wrong.status(),
            StatusCode::FORBIDDEN,
            "another content type"
        );
        assert_eq!(blobs.head("up/right.png").await.expect("head"), None);

        let tampered = tamper(&url);
        let forged = put(tampered, "image/png").await.expect("an answer");
        assert_eq!(
            forged.status(),
            StatusCode::FORBIDDEN,
            "a tampered signature"
        );

        let right = put(url, "image/png").await.expect("an answer");
        assert!(
            right.status().is_success(),
            "the signed upload: {}",
            right.status()
        );
        assert_eq!(
            blobs.head("up/right.png").await.expect("head"),
            Some(Meta { size: 8 })
        );

        let short = blobs
            .presign_put("up/late.png", "image/png", Duration::from_secs(1))
            .await
            .expect("a presigned URL")
            .expect("S3 signs");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let late = put(short, "image/png").await.expect("an answer");
        assert_eq!(late.status(), StatusCode::FORBIDDEN, "an expired URL");
        assert_eq!(blobs.head("up/late.png").await.expect("head"), None);

        let direct = blobs
            .direct_url("up/right.png")
            .expect("S3 has direct URLs");
        assert!(direct.ends_with("/up/right.png"), "{direct}");
        blobs.delete("up/right.png").await.expect("delete");
    }
}

/// The URL with the first hex digit of its signature changed.
fn tamper(url: &str) -> String {
    let at = url.find("X-Amz-Signature=").expect("a SigV4 signature") + "X-Amz-Signature=".len();
    let mut bytes = url.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).expect("still ASCII")
}
