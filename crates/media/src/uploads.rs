//! Uploads: a presigned URL, the PUT (to the bucket itself on S3, to [`receive`] on a
//! folder), and complete, which checks what was put before an image exists. A presigned
//! PUT cannot cap a size, so complete reads the stored object's size and first bytes:
//! bigger than declared, or not the format declared (by magic bytes), and the upload is
//! refused and the object deleted.
//!
//! [`receive`]: MediaService::receive

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use matsuri_coord::Window;
use matsuri_core::clock::Millis;
use matsuri_core::ids::UserId;
use matsuri_core::{FieldError, timefmt};
use matsuri_imaging::{Format, MAX_BYTES, SNIFF_LEN};

use crate::model::{Accepted, ImageStatus, MAX_FILENAME, MediaError, NewUpload, UploadTicket};
use crate::service::{MediaService, UPLOADED_TOPIC};

/// Why the folder's upload endpoint refused a PUT.
#[derive(Debug, thiserror::Error)]
pub enum PutRefused {
    #[error("no such upload")]
    NotFound,
    #[error("the signature does not match this upload, its content type or its expiry")]
    BadSignature,
    #[error("the upload URL has expired")]
    Expired,
    #[error("this upload is complete or refused: ask for a new URL")]
    Closed,
    #[error("the body is larger than the size declared")]
    TooLarge,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PutRefused {
    fn from(e: sqlx::Error) -> Self {
        PutRefused::Internal(e.into())
    }
}

/// What complete found wrong with a stored upload.
enum Mismatch {
    Empty,
    Larger { stored: u64, declared: u64 },
    NotAnImage,
    OtherFormat { found: Format, declared: Format },
}

impl Mismatch {
    fn message(&self) -> String {
        match self {
            Mismatch::Empty => "is empty".into(),
            Mismatch::Larger { stored, declared } => {
                format!("is {stored} bytes, more than the {declared} declared")
            }
            Mismatch::NotAnImage => "is not a JPEG, PNG or WebP image".into(),
            Mismatch::OtherFormat { found, declared } => format!(
                "is {}, not the {} declared",
                found.as_str(),
                declared.as_str()
            ),
        }
    }
}

type UploadRow = (String, String, String, i64, String, Option<String>, Millis);

impl MediaService {
    /// A URL to PUT one image to, good for `media.upload_url_seconds`.
    pub async fn presign(
        &self,
        owner: &UserId,
        upload: &NewUpload,
    ) -> Result<UploadTicket, MediaError> {
        let mut errors = Vec::new();
        let filename = matsuri_core::text::line("filename", &upload.filename, MAX_FILENAME)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let format = Format::from_content_type(&upload.content_type);
        if format.is_none() {
            errors.push(FieldError::new(
                "content_type",
                "must be image/jpeg, image/png or image/webp",
            ));
        }
        let limit = i64::try_from(MAX_BYTES).unwrap_or(i64::MAX);
        if !(1..=limit).contains(&upload.size) {
            errors.push(FieldError::new(
                "size",
                format!("must be 1 to {limit} bytes (20 MiB)"),
            ));
        }
        let Some(format) = format.filter(|_| errors.is_empty()) else {
            return Err(MediaError::Invalid(errors));
        };
        let now = self.clock.now_ms();
        let id = matsuri_core::ids::new_uuid_v7();
        let window = Window {
            key: format!("media:uploads:{}", owner.as_str()),
            limit: u64::from(self.settings.uploads_per_minute.max(1)),
            length: Duration::from_secs(60),
        };
        if let Err(wait) = self.coord.take_slots(&[window], &id, now).await? {
            return Err(MediaError::RateLimited {
                retry_after_seconds: wait.as_secs().max(1),
            });
        }
        let lifetime = Duration::from_secs(self.settings.upload_url_seconds.max(1));
        let expires_at = now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(0));
        sqlx::query(
            "INSERT INTO media_uploads (id, owner_id, filename, content_type, size, state, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
        )
        .bind(&id)
        .bind(owner.as_str())
        .bind(&filename)
        .bind(format.content_type())
        .bind(upload.size)
        .bind(expires_at)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        let url = match self
            .originals
            .presign_put(&id, format.content_type(), lifetime)
            .await?
        {
            Some(url) => url,
            None => self.local_upload_url(&id, format.content_type(), expires_at),
        };
        Ok(UploadTicket {
            upload_id: id,
            url,
            method: "PUT".into(),
            headers: BTreeMap::from([("Content-Type".into(), format.content_type().into())]),
            expires_at: timefmt::rfc3339(expires_at),
        })
    }

    /// The folder's signed upload URL: this server's `PUT /uploads/{id}/original`, with
    /// the expiry and a signature over the upload, its content type and its expiry.
    fn local_upload_url(&self, id: &str, content_type: &str, expires_at: Millis) -> String {
        let expires = expires_at.div_euclid(1_000);
        let signature = URL_SAFE_NO_PAD.encode(
            self.upload_mac(id, content_type, expires)
                .finalize()
                .into_bytes(),
        );
        self.public_url(&format!(
            "/uploads/{id}/original?expires={expires}&signature={signature}"
        ))
    }

    /// The MAC of an upload URL, to finalise (signing) or verify against.
    fn upload_mac(&self, id: &str, content_type: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.signer.clone();
        mac.update(format!("{id}\n{content_type}\n{expires}").as_bytes());
        mac
    }

    /// The folder's upload endpoint: stores `body` as the upload's original when the
    /// signature covers this upload, `content_type` and `expires`, the URL has not expired,
    /// the upload is still open and the body is no larger than declared.
    pub async fn receive(
        &self,
        id: &str,
        content_type: &str,
        expires: i64,
        signature: &str,
        body: axum::body::Body,
    ) -> Result<(), PutRefused> {
        let id = matsuri_core::ids::parse_uuid(id).ok_or(PutRefused::NotFound)?;
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT state, size FROM media_uploads WHERE id = $1")
                .bind(&id)
                .fetch_optional(self.db.reader())
                .await?;
        let (state, size) = row.ok_or(PutRefused::NotFound)?;
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| PutRefused::BadSignature)?;
        self.upload_mac(&id, content_type, expires)
            .verify_slice(&given)
            .map_err(|_| PutRefused::BadSignature)?;
        if self.clock.now_ms().div_euclid(1_000) > expires {
            return Err(PutRefused::Expired);
        }
        if state != "pending" {
            return Err(PutRefused::Closed);
        }
        let limit = usize::try_from(size).unwrap_or(0);
        let bytes: Bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| PutRefused::TooLarge)?;
        self.originals.put(&id, bytes).await?;
        Ok(())
    }

    /// Checks what was put and, when it is what was declared, records the image as
    /// `processing` and queues its job, in one transaction. Completing again answers the
    /// same image; an upload with nothing put (yet) is `upload_missing`.
    pub async fn complete(&self, owner: &UserId, id: &str) -> Result<Accepted, MediaError> {
        let id = matsuri_core::ids::parse_uuid(id).ok_or(MediaError::NotFound)?;
        let row: Option<UploadRow> = sqlx::query_as(
            "SELECT owner_id, filename, content_type, size, state, image_id, expires_at \
             FROM media_uploads WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(self.db.reader())
        .await?;
        let (owner_id, filename, content_type, declared, state, image_id, _) =
            row.ok_or(MediaError::NotFound)?;
        if owner_id != owner.as_str() {
            return Err(MediaError::NotFound);
        }
        match (state.as_str(), image_id) {
            ("completed", Some(image_id)) => return self.accepted(image_id).await,
            ("pending", _) => {}
            _ => return Err(MediaError::UploadMissing),
        }
        let declared_format = Format::from_content_type(&content_type)
            .ok_or_else(|| anyhow::anyhow!("upload {id} has the content type {content_type}"))?;
        let Some(meta) = self.originals.head(&id).await? else {
            return Err(MediaError::UploadMissing);
        };
        let declared = u64::try_from(declared).unwrap_or(0);
        let head = self
            .originals
            .read_head(&id, SNIFF_LEN as u64)
            .await?
            .ok_or(MediaError::UploadMissing)?;
        let mismatch = if meta.size == 0 {
            Some(Mismatch::Empty)
        } else if meta.size > declared.min(MAX_BYTES) {
            Some(Mismatch::Larger {
                stored: meta.size,
                declared,
            })
        } else {
            match matsuri_imaging::sniff(&head) {
                None => Some(Mismatch::NotAnImage),
                Some(found) if found != declared_format => Some(Mismatch::OtherFormat {
                    found,
                    declared: declared_format,
                }),
                Some(_) => None,
            }
        };
        if let Some(mismatch) = mismatch {
            return Err(self.refuse(&id, &mismatch).await);
        }
        self.record(&id, owner, &filename, declared_format, meta.size)
            .await
    }

    /// Refuses the upload (once: a concurrent complete may have done it) and deletes what
    /// was put. Returns the error to answer.
    async fn refuse(&self, id: &str, mismatch: &Mismatch) -> MediaError {
        let refused = sqlx::query(
            "UPDATE media_uploads SET state = 'refused' WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(self.db.writer())
        .await;
        match refused {
            Ok(_) => match self.originals.delete(id).await {
                Ok(()) => {
                    tracing::info!(upload_id = %id, why = %mismatch.message(), "upload refused");
                    MediaError::Invalid(vec![FieldError::new("file", mismatch.message())])
                }
                Err(e) => MediaError::Internal(e),
            },
            Err(e) => e.into(),
        }
    }

    /// Moves the upload from pending to completed with its image, which starts as
    /// `processing`, and queues the image's job. When another complete got there first,
    /// answers its image.
    async fn record(
        &self,
        upload_id: &str,
        owner: &UserId,
        filename: &str,
        format: Format,
        bytes: u64,
    ) -> Result<Accepted, MediaError> {
        let now = self.clock.now_ms();
        let image_id = matsuri_core::ids::new_uuid_v7();
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE media_uploads SET state = 'completed', image_id = $2 WHERE id = $1 AND state = 'pending'",
        )
        .bind(upload_id)
        .bind(&image_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            let (state, image_id): (String, Option<String>) =
                sqlx::query_as("SELECT state, image_id FROM media_uploads WHERE id = $1")
                    .bind(upload_id)
                    .fetch_one(self.db.reader())
                    .await?;
            return match (state.as_str(), image_id) {
                ("completed", Some(image_id)) => self.accepted(image_id).await,
                _ => Err(MediaError::UploadMissing),
            };
        }
        sqlx::query(
            "INSERT INTO media_images (id, owner_id, upload_id, filename, status, search_text, tags, format, bytes, variants, created_at) \
             VALUES ($1, $2, $3, $4, 'processing', $5, '[]', $6, $7, '[]', $8)",
        )
        .bind(&image_id)
        .bind(owner.as_str())
        .bind(upload_id)
        .bind(filename)
        .bind(filename.to_lowercase())
        .bind(format.as_str())
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let job = crate::worker::Job {
            image_id: image_id.clone(),
        };
        matsuri_bus::publish(&mut tx, now, UPLOADED_TOPIC, Some(&image_id), &job).await?;
        tx.commit().await?;
        self.nudge.nudge();
        metrics::counter!("media_uploads_completed_total").increment(1);
        Ok(Accepted {
            image_id,
            status: ImageStatus::Processing,
        })
    }

    /// The answer of a complete that was already done: the image and where it is now.
    async fn accepted(&self, image_id: String) -> Result<Accepted, MediaError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM media_images WHERE id = $1")
                .bind(&image_id)
                .fetch_optional(self.db.reader())
                .await?;
        let status = status.ok_or(MediaError::NotFound)?;
        Ok(Accepted {
            image_id,
            status: ImageStatus::parse(&status),
        })
    }
}
