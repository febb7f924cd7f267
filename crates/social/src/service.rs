//! Posts and likes. A like or an unlike goes to the like writers (`likes.rs`), which make
//! the waiting ones together: the like rows, the posts' counts (moved only by the rows
//! really inserted or deleted) and, for first likes of someone else's post, the notice
//! rows and `post.liked` events commit together or not at all.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use matsuri_core::ids::UserId;
use matsuri_core::page::Page;
use matsuri_core::{FieldError, SharedClock, timefmt};
use matsuri_db::{Db, batches, parameter_list};
use matsuri_module::{People, Pictures};

use crate::likes::LikeWriters;

/// The topic of first likes.
pub const LIKED_TOPIC: &str = "post.liked";
/// The topic of deleted posts.
pub const DELETED_TOPIC: &str = "post.deleted";
/// A post's text: 1–2,000 characters.
pub const MAX_POST: usize = 2_000;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Person {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Post {
    #[schema(format = "uuid")]
    pub id: String,
    pub author: Person,
    pub text: String,
    #[schema(format = "uuid")]
    pub image_id: Option<String>,
    /// Always the number of likes.
    pub like_count: i64,
    pub liked_by_me: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LikeState {
    #[schema(format = "uuid")]
    pub post_id: String,
    pub liked: bool,
    pub like_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Liker {
    pub user: Person,
    /// RFC 3339.
    pub liked_at: String,
}

/// A first like of someone else's post, as the bus carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Liked {
    pub post_id: String,
    pub author_id: String,
    pub liker_id: String,
    pub excerpt: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("no such post")]
    NotFound,
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SocialError {
    fn from(e: sqlx::Error) -> Self {
        SocialError::Internal(e.into())
    }
}

impl From<SocialError> for matsuri_core::ApiError {
    fn from(e: SocialError) -> Self {
        match e {
            SocialError::NotFound => matsuri_core::ApiError::not_found(e.to_string()),
            SocialError::Invalid(errors) => matsuri_core::ApiError::validation(errors),
            SocialError::Internal(cause) => matsuri_core::ApiError::internal(cause),
        }
    }
}

pub struct SocialService {
    db: Db,
    clock: SharedClock,
    people: Arc<dyn People>,
    pictures: Arc<dyn Pictures>,
    likes: LikeWriters,
}

type PostRow = (String, String, String, Option<String>, i64, i64);
const POST_COLUMNS: &str = "id, author_id, text, image_id, like_count, created_at";

impl SocialService {
    /// Starts the like writers: must be called inside a tokio runtime.
    pub fn new(
        db: Db,
        clock: SharedClock,
        people: Arc<dyn People>,
        pictures: Arc<dyn Pictures>,
    ) -> Self {
        let likes = LikeWriters::start(&db, &clock);
        Self {
            db,
            clock,
            people,
            pictures,
            likes,
        }
    }

    pub(crate) fn people(&self) -> &Arc<dyn People> {
        &self.people
    }

    pub async fn create(
        &self,
        author: &UserId,
        text: &str,
        image_id: Option<String>,
    ) -> Result<Post, SocialError> {
        let mut errors = Vec::new();
        let text = matsuri_core::text::text("text", text, MAX_POST)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let image_id = match image_id.as_deref().map(matsuri_core::ids::parse_uuid) {
            Some(Some(id)) if self.pictures.attachable(author.as_str(), &id).await? => Some(id),
            Some(_) => {
                errors.push(FieldError::new(
                    "image_id",
                    "must be one of your images, processed",
                ));
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(SocialError::Invalid(errors));
        }
        let id = matsuri_core::ids::new_uuid_v7();
        sqlx::query(
            "INSERT INTO posts (id, author_id, text, image_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(author.as_str())
        .bind(&text)
        .bind(image_id.as_deref())
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        self.get(Some(author), &id).await
    }

    pub async fn get(&self, viewer: Option<&UserId>, id: &str) -> Result<Post, SocialError> {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE id = $1");
        let row: Option<PostRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.reader())
            .await?;
        let row = row.ok_or(SocialError::NotFound)?;
        self.views(viewer, vec![row])
            .await?
            .pop()
            .ok_or(SocialError::NotFound)
    }

    /// The feed, newest first; the cursor is the last post of the previous page.
    pub async fn feed(
        &self,
        viewer: Option<&UserId>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Post>, SocialError> {
        let filter = if cursor.is_some() {
            " WHERE id < $2"
        } else {
            ""
        };
        let sql = format!("SELECT {POST_COLUMNS} FROM posts{filter} ORDER BY id DESC LIMIT $1");
        let mut query =
            sqlx::query_as::<_, PostRow>(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit) + 1);
        if let Some(cursor) = cursor {
            query = query.bind(cursor);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        let posts = self.views(viewer, rows).await?;
        Ok(Page::from_rows(posts, limit, |p| p.id.clone()))
    }

    async fn views(
        &self,
        viewer: Option<&UserId>,
        rows: Vec<PostRow>,
    ) -> Result<Vec<Post>, SocialError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let authors: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        let names = self.people.names(&authors).await?;
        let mut liked: Vec<String> = Vec::new();
        if let Some(viewer) = viewer {
            let sql = format!(
                "SELECT post_id FROM post_likes WHERE user_id = $1 AND post_id IN ({})",
                parameter_list(2, rows.len())
            );
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(viewer.as_str());
            for row in &rows {
                query = query.bind(&row.0);
            }
            liked = query.fetch_all(self.db.reader()).await?;
        }
        Ok(rows
            .into_iter()
            .map(
                |(id, author_id, text, image_id, like_count, created_at)| Post {
                    liked_by_me: liked.contains(&id),
                    author: Person {
                        name: names.get(&author_id).cloned().unwrap_or_default(),
                        id: author_id,
                    },
                    id,
                    text,
                    image_id,
                    like_count,
                    created_at: timefmt::rfc3339(created_at),
                },
            )
            .collect())
    }

    /// Deletes the author's post, its likes and what they notified; another user's post
    /// is not found. The post's row goes first: a like written at the same time either
    /// counted on it before (and its row is deleted here after), or finds it gone.
    pub async fn delete(&self, author: &UserId, id: &str) -> Result<(), SocialError> {
        // An unlike's batch holds the like rows this waits for, and waits for the post's
        // row this holds: the database gives one of them up, and this one goes again.
        batches::retrying(
            || self.delete_once(author, id),
            |e| matches!(e, SocialError::Internal(e) if batches::is_retryable_within(e)),
        )
        .await
    }

    async fn delete_once(&self, author: &UserId, id: &str) -> Result<(), SocialError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let owned: Option<String> =
            sqlx::query_scalar("DELETE FROM posts WHERE id = $1 AND author_id = $2 RETURNING id")
                .bind(id)
                .bind(author.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if owned.is_none() {
            return Err(SocialError::NotFound);
        }
        for sql in [
            "DELETE FROM post_likes WHERE post_id = $1",
            "DELETE FROM post_like_notices WHERE post_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let gone = serde_json::json!({"post_id": id});
        matsuri_bus::publish(&mut tx, now, DELETED_TOPIC, Some(id), &gone).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `user` likes the post; again changes nothing.
    pub async fn like(&self, user: &UserId, id: &str) -> Result<LikeState, SocialError> {
        self.likes.write(user.as_str(), id, true).await
    }

    /// `user` no longer likes the post; again changes nothing.
    pub async fn unlike(&self, user: &UserId, id: &str) -> Result<LikeState, SocialError> {
        self.likes.write(user.as_str(), id, false).await
    }

    /// Who liked the post, newest first; the cursor is `<liked_at>_<user id>` of the
    /// last liker of the previous page.
    pub async fn likers(
        &self,
        id: &str,
        cursor: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Page<Liker>, SocialError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM posts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.reader())
            .await?;
        exists.ok_or(SocialError::NotFound)?;
        let filter = if cursor.is_some() {
            " AND (liked_at < $3 OR (liked_at = $3 AND user_id < $4))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT user_id, liked_at FROM post_likes WHERE post_id = $1{filter} \
             ORDER BY liked_at DESC, user_id DESC LIMIT $2"
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(i64::from(limit) + 1);
        if let Some((at, user)) = cursor {
            query = query.bind(at).bind(user);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        let ids: Vec<String> = rows.iter().map(|(u, _)| u.clone()).collect();
        let names = self.people.names(&ids).await?;
        let keyed = rows
            .into_iter()
            .map(|(user, at)| {
                let liker = Liker {
                    user: Person {
                        name: names.get(&user).cloned().unwrap_or_default(),
                        id: user.clone(),
                    },
                    liked_at: timefmt::rfc3339(at),
                };
                (format!("{at}_{user}"), liker)
            })
            .collect();
        Ok(Page::from_keyed_rows(keyed, limit))
    }
}
