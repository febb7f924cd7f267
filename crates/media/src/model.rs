//! What the media API shows and refuses: upload tickets, images and their variants, and the
//! errors with their contract codes.

use serde::{Deserialize, Serialize};

use matsuri_core::{ApiError, FieldError};

/// A file name: 1–255 characters.
pub const MAX_FILENAME: usize = 255;
/// An image's title: 1–200 characters.
pub const MAX_TITLE: usize = 200;
/// Tags one image may carry.
pub const MAX_TAGS: usize = 20;
/// A tag: 1–40 characters.
pub const MAX_TAG: usize = 40;

/// The variants every image gets: `thumbnail` (100×100, cropped to fill), `medium` (within
/// 800×800) and `large` (within 1920×1920), never enlarged.
pub const VARIANT_NAMES: [&str; 3] = ["thumbnail", "medium", "large"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    Processing,
    Completed,
    Failed,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Processing => "processing",
            ImageStatus::Completed => "completed",
            ImageStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> ImageStatus {
        match text {
            "completed" => ImageStatus::Completed,
            "failed" => ImageStatus::Failed,
            _ => ImageStatus::Processing,
        }
    }
}

/// The content types an upload may have (checked by the server, which answers 422 for
/// any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum UploadType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
}

/// What a client asks to upload.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewUpload {
    #[schema(format = "line", min_length = 1, max_length = 255)]
    pub filename: String,
    #[schema(value_type = UploadType)]
    pub content_type: String,
    /// The file's size in bytes: 1 to 20 MiB.
    #[serde(deserialize_with = "matsuri_core::extract::integer::required")]
    #[schema(minimum = 1, maximum = 20_971_520)]
    pub size: i64,
}

/// Where and how to upload: PUT the file's bytes to `url` with `headers`, then complete.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadTicket {
    #[schema(format = "uuid")]
    pub upload_id: String,
    /// The bucket's presigned URL on S3; this server's signed upload endpoint on a folder
    /// (relative to this server unless `media.public_base_url` is set).
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the PUT must carry, exactly: the signature covers them.
    pub headers: std::collections::BTreeMap<String, String>,
    /// RFC 3339: the URL is refused after this.
    pub expires_at: String,
}

/// A completed upload, on its way through the worker.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    #[schema(format = "uuid")]
    pub image_id: String,
    pub status: ImageStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VariantView {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Served with a one-year immutable cache; built from `media.public_base_url`.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Image {
    #[schema(format = "uuid")]
    pub id: String,
    pub status: ImageStatus,
    pub filename: String,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// Of the original as shown (after its EXIF orientation); known once processed.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `jpeg`, `png` or `webp`: the original's format.
    pub format: String,
    /// The original's size.
    pub bytes: u64,
    /// RFC 3339, from the photo's EXIF (its local time, read as UTC).
    pub taken_at: Option<String>,
    pub variants: Vec<VariantView>,
    /// Why processing failed (`too_many_pixels`, `not_an_image`, …).
    pub failure_reason: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What the owner may change; what is absent stays.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ImagePatch {
    /// A title of 1–200 characters; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = "line", min_length = 1, max_length = 200)]
    pub title: Option<Option<String>>,
    /// The whole list of tags (replaces the old one): at most 20.
    #[schema(max_items = 20)]
    pub tags: Option<Vec<Tag>>,
}

/// A tag: 1–40 characters, matched without case.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = "line", min_length = 1, max_length = 40)]
pub struct Tag(pub String);

/// A field that was sent, `null` or not: `Some(None)` for `null`, and (with
/// `#[serde(default)]`) `None` when absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// An original's format, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Jpeg,
    Png,
    Webp,
}

impl FormatName {
    pub fn as_str(self) -> &'static str {
        match self {
            FormatName::Jpeg => "jpeg",
            FormatName::Png => "png",
            FormatName::Webp => "webp",
        }
    }
}

/// The filters of `GET /images`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct ImageQuery {
    /// Only images with this tag.
    #[param(max_length = 40)]
    pub tag: Option<String>,
    /// Only images of this format.
    #[param(inline)]
    pub format: Option<FormatName>,
    /// Only images at least this wide (in pixels, at most 100,000).
    #[param(minimum = 0, maximum = 100_000)]
    pub min_width: Option<u32>,
    /// Text in the title or the file name.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// How many images to return (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no such upload or image")]
    NotFound,
    #[error("nothing was uploaded to this upload's URL, or it was refused")]
    UploadMissing,
    #[error("too many uploads at once; try again in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for MediaError {
    fn from(e: sqlx::Error) -> Self {
        MediaError::Internal(e.into())
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        use axum::http::StatusCode;
        let detail = e.to_string();
        match e {
            MediaError::NotFound => ApiError::not_found(detail),
            MediaError::UploadMissing => {
                ApiError::new(StatusCode::CONFLICT, "upload_missing", detail)
            }
            MediaError::RateLimited {
                retry_after_seconds,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
                .with("retry_after", retry_after_seconds)
                .with_retry_after(retry_after_seconds),
            MediaError::Invalid(errors) => ApiError::validation(errors),
            MediaError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
