//! Images as their owner sees them: one, the list (filtered by tag, format, width and text
//! in the title or file name, newest first), a title and tags to set, and delete, which
//! removes the original and the variants. Another user's image is not found.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use matsuri_core::clock::Millis;
use matsuri_core::ids::UserId;
use matsuri_core::page::{DEFAULT_LIMIT, MAX_LIMIT, Page};
use matsuri_core::{FieldError, timefmt};

use crate::model::{
    Image, ImagePatch, ImageQuery, ImageStatus, MAX_TAG, MAX_TAGS, MAX_TITLE, MediaError, Tag,
    VariantView,
};
use crate::service::{DELETED_TOPIC, MediaService};
use crate::worker::Deleted;

/// A variant as the database keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredVariant {
    pub(crate) name: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bytes: u64,
    /// A strong validator: a digest of the bytes.
    pub(crate) etag: String,
}

impl StoredVariant {
    pub(crate) fn etag_of(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(&Sha256::digest(bytes)[..18])
    }
}

/// A variant ready to serve: where it is kept and its validator.
pub struct Servable {
    pub key: String,
    pub etag: String,
    pub bytes: u64,
}

type ImageRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    String,
    i64,
    Option<Millis>,
    String,
    Option<String>,
    Millis,
);
const IMAGE_COLUMNS: &str = "id, status, filename, title, tags, width, height, format, bytes, \
                             taken_at, variants, failure_reason, created_at";

/// The widest `min_width` asked for (no image is wider than 50 megapixels allow).
const MAX_WIDTH_FILTER: u32 = 100_000;

/// A tag as kept and matched: trimmed, in lower case.
fn tag_key(tag: &str) -> String {
    tag.trim().to_lowercase()
}

/// `text` with `LIKE`'s wildcards escaped (`\` is the escape).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl MediaService {
    fn view(&self, row: ImageRow) -> Result<Image, MediaError> {
        let (id, status, filename, title, tags, width, height, format, bytes) = (
            row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
        );
        let (taken_at, variants, failure_reason, created_at) = (row.9, row.10, row.11, row.12);
        let tags: Vec<String> = serde_json::from_str(&tags).map_err(anyhow::Error::from)?;
        let stored: Vec<StoredVariant> =
            serde_json::from_str(&variants).map_err(anyhow::Error::from)?;
        let variants = stored
            .into_iter()
            .map(|v| VariantView {
                url: self.public_url(&format!("/images/{id}/{}.webp", v.name)),
                name: v.name,
                width: v.width,
                height: v.height,
                bytes: v.bytes,
            })
            .collect();
        Ok(Image {
            status: ImageStatus::parse(&status),
            filename,
            title,
            tags,
            width: width.and_then(|w| u32::try_from(w).ok()),
            height: height.and_then(|h| u32::try_from(h).ok()),
            format,
            bytes: u64::try_from(bytes).unwrap_or(0),
            taken_at: taken_at.map(timefmt::rfc3339),
            variants,
            failure_reason,
            created_at: timefmt::rfc3339(created_at),
            id,
        })
    }

    /// The owner's image; another user's is not found.
    pub async fn image(&self, owner: &UserId, id: &str) -> Result<Image, MediaError> {
        let id = matsuri_core::ids::parse_uuid(id).ok_or(MediaError::NotFound)?;
        let sql =
            format!("SELECT {IMAGE_COLUMNS} FROM media_images WHERE id = $1 AND owner_id = $2");
        let row: Option<ImageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .bind(owner.as_str())
            .fetch_optional(self.db.reader())
            .await?;
        self.view(row.ok_or(MediaError::NotFound)?)
    }

    /// The owner's images, newest first, filtered; the cursor is the last image of the
    /// previous page (any image id is a position in the list).
    pub async fn images(
        &self,
        owner: &UserId,
        query: &ImageQuery,
    ) -> Result<Page<Image>, MediaError> {
        let mut errors = Vec::new();
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if query.min_width.is_some_and(|w| w > MAX_WIDTH_FILTER) {
            errors.push(FieldError::new(
                "min_width",
                format!("must be at most {MAX_WIDTH_FILTER}"),
            ));
        }
        if query
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_TITLE)
        {
            errors.push(FieldError::new(
                "q",
                format!("must be at most {MAX_TITLE} characters"),
            ));
        }
        if query
            .tag
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TAG)
        {
            errors.push(FieldError::new(
                "tag",
                format!("must be at most {MAX_TAG} characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(MediaError::Invalid(errors));
        }
        let mut sql = format!("SELECT {IMAGE_COLUMNS} FROM media_images i WHERE i.owner_id = $1");
        let mut binds: Vec<String> = vec![owner.as_str().to_owned()];
        let mut next = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace("$?", &format!("${}", binds.len())));
        };
        if let Some(cursor) = &query.cursor {
            next(&mut sql, " AND i.id < $?", cursor.clone());
        }
        if let Some(format) = query.format {
            next(&mut sql, " AND i.format = $?", format.as_str().to_owned());
        }
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            next(
                &mut sql,
                " AND i.search_text LIKE $? ESCAPE '\\'",
                like_escaped(&q.to_lowercase()),
            );
        }
        if let Some(tag) = query.tag.as_deref().map(tag_key).filter(|t| !t.is_empty()) {
            next(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM media_image_tags t WHERE t.image_id = i.id AND t.tag = $?)",
                tag,
            );
        }
        let width_at = binds.len() + 1;
        if query.min_width.is_some() {
            sql.push_str(&format!(" AND i.width >= ${width_at}"));
        }
        let limit_at = width_at + usize::from(query.min_width.is_some());
        sql.push_str(&format!(" ORDER BY i.id DESC LIMIT ${limit_at}"));
        let mut select = sqlx::query_as::<_, ImageRow>(sqlx::AssertSqlSafe(sql));
        for value in binds {
            select = select.bind(value);
        }
        if let Some(width) = query.min_width {
            select = select.bind(i64::from(width));
        }
        let rows = select
            .bind(i64::from(limit) + 1)
            .fetch_all(self.db.reader())
            .await?;
        let images = rows
            .into_iter()
            .map(|row| self.view(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(images, limit, |i| i.id.clone()))
    }

    /// Sets the owner's title and tags.
    pub async fn update(
        &self,
        owner: &UserId,
        id: &str,
        patch: &ImagePatch,
    ) -> Result<Image, MediaError> {
        let id = matsuri_core::ids::parse_uuid(id).ok_or(MediaError::NotFound)?;
        let mut errors = Vec::new();
        let title = match &patch.title {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => matsuri_core::text::line("title", t, MAX_TITLE)
                .map(Some)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        let tags = patch.tags.as_ref().map(|tags| {
            if tags.len() > MAX_TAGS {
                errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
            }
            let mut kept: Vec<String> = Vec::new();
            for Tag(tag) in tags {
                match matsuri_core::text::line("tags", tag, MAX_TAG) {
                    Ok(_) => {
                        let key = tag_key(tag);
                        if !kept.contains(&key) {
                            kept.push(key);
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            kept
        });
        if !errors.is_empty() {
            return Err(MediaError::Invalid(errors));
        }
        let mut tx = self.db.begin().await?;
        let found: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT filename, title FROM media_images WHERE id = $1 AND owner_id = $2",
        )
        .bind(&id)
        .bind(owner.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let (filename, old_title) = found.ok_or(MediaError::NotFound)?;
        let title = title.unwrap_or(old_title);
        let search =
            format!("{} {}", title.as_deref().unwrap_or_default(), filename).to_lowercase();
        sqlx::query("UPDATE media_images SET title = $2, search_text = $3 WHERE id = $1")
            .bind(&id)
            .bind(title.as_deref())
            .bind(search)
            .execute(&mut *tx)
            .await?;
        if let Some(tags) = &tags {
            sqlx::query("UPDATE media_images SET tags = $2 WHERE id = $1")
                .bind(&id)
                .bind(serde_json::to_string(tags).map_err(anyhow::Error::from)?)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM media_image_tags WHERE image_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            for tag in tags {
                sqlx::query(
                    "INSERT INTO media_image_tags (image_id, owner_id, tag) VALUES ($1, $2, $3)",
                )
                .bind(&id)
                .bind(owner.as_str())
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.image(owner, &id).await
    }

    /// Deletes the owner's image: its row, tags and upload at once, with an event whose
    /// consumer removes the objects should removing them here fail.
    pub async fn delete(&self, owner: &UserId, id: &str) -> Result<(), MediaError> {
        let id = matsuri_core::ids::parse_uuid(id).ok_or(MediaError::NotFound)?;
        let mut tx = self.db.begin().await?;
        let upload_id: Option<String> = sqlx::query_scalar(
            "DELETE FROM media_images WHERE id = $1 AND owner_id = $2 RETURNING upload_id",
        )
        .bind(&id)
        .bind(owner.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let upload_id = upload_id.ok_or(MediaError::NotFound)?;
        sqlx::query("DELETE FROM media_image_tags WHERE image_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM media_uploads WHERE id = $1")
            .bind(&upload_id)
            .execute(&mut *tx)
            .await?;
        let deleted = Deleted {
            image_id: id.clone(),
            upload_id: upload_id.clone(),
        };
        let now = self.clock.now_ms();
        matsuri_bus::publish(&mut tx, now, DELETED_TOPIC, Some(&id), &deleted).await?;
        tx.commit().await?;
        if let Err(e) = self.remove_objects(&id, &upload_id).await {
            tracing::warn!(image_id = %id, error = %e, "objects of a deleted image stay until the cleaner removes them");
            self.nudge.nudge();
        }
        Ok(())
    }

    /// Whether `image_id` is an image of `owner` whose variants are ready (to attach to a
    /// post).
    pub async fn attachable(&self, owner: &str, image_id: &str) -> Result<bool, MediaError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM media_images WHERE id = $1 AND owner_id = $2 AND status = 'completed'",
        )
        .bind(image_id)
        .bind(owner)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(found.is_some())
    }

    /// A completed image's variant by name, to serve to anyone with its URL (as a CDN
    /// fetches it); `None` for an unknown, unfinished or deleted one.
    pub async fn servable(&self, id: &str, name: &str) -> Result<Option<Servable>, MediaError> {
        let Some(id) = matsuri_core::ids::parse_uuid(id) else {
            return Ok(None);
        };
        let variants: Option<String> = sqlx::query_scalar(
            "SELECT variants FROM media_images WHERE id = $1 AND status = 'completed'",
        )
        .bind(&id)
        .fetch_optional(self.db.reader())
        .await?;
        let Some(variants) = variants else {
            return Ok(None);
        };
        let stored: Vec<StoredVariant> =
            serde_json::from_str(&variants).map_err(anyhow::Error::from)?;
        Ok(stored
            .into_iter()
            .find(|v| v.name == name)
            .map(|v| Servable {
                key: Self::variant_key(&id, &v.name),
                etag: v.etag,
                bytes: v.bytes,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escaped("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_escaped("夏祭り"), "%夏祭り%");
    }

    #[test]
    fn tags_match_without_case_or_spaces() {
        assert_eq!(tag_key("  Summer "), "summer");
        assert_eq!(tag_key("ÉTÉ"), "été");
    }
}
