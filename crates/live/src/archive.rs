//! The archive: a room's shown comments, oldest first, paged by id, and replay by offset
//! window, so a player can show each comment at the moment of the video it was written
//! at.

use matsuri_core::page::Page;

use crate::model::{Comment, LiveError};
use crate::service::LiveService;

/// What the archive is asked for.
#[derive(Debug, Clone, Default)]
pub struct ArchiveQuery {
    /// Comments after this one.
    pub after: Option<String>,
    /// Written at this offset from the start or later, in milliseconds.
    pub from_ms: Option<i64>,
    /// Written before this offset.
    pub to_ms: Option<i64>,
    pub limit: u32,
}

pub(crate) type CommentRow = (String, String, String, String, i64, i64, i64);
pub(crate) const COMMENT_COLUMNS: &str = "id, live_id, user_id, text, likes, created_at, offset_ms";

impl LiveService {
    /// Comments as shown, with their authors' names.
    pub(crate) async fn comment_views(
        &self,
        rows: Vec<CommentRow>,
    ) -> Result<Vec<Comment>, LiveError> {
        let ids: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
        let names = self.names(&ids).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, live_id, user_id, text, likes, created_at, offset_ms)| Comment {
                    user: self.commenter(&names, &user_id),
                    id,
                    live_id,
                    text,
                    likes,
                    created_at: matsuri_core::timefmt::rfc3339(created_at),
                    offset_ms,
                },
            )
            .collect())
    }

    /// The shown comments of a room among `ids`.
    pub(crate) async fn comments_by_id(
        &self,
        live_id: &str,
        ids: &[String],
    ) -> Result<Vec<Comment>, LiveError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM live_comments WHERE live_id = $1 AND status = 'shown' \
             AND id IN ({})",
            matsuri_db::parameter_list(2, ids.len())
        );
        let mut query = sqlx::query_as::<_, CommentRow>(sqlx::AssertSqlSafe(sql)).bind(live_id);
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        self.comment_views(rows).await
    }

    /// One page of the archive.
    pub async fn archive(
        &self,
        live_id: &str,
        ask: &ArchiveQuery,
    ) -> Result<Page<Comment>, LiveError> {
        self.room_row(live_id).await?;
        let mut sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM live_comments WHERE live_id = $1 AND status = 'shown'"
        );
        let mut n = 1;
        if ask.after.is_some() {
            n += 1;
            sql.push_str(&format!(" AND id > ${n}"));
        }
        if ask.from_ms.is_some() {
            n += 1;
            sql.push_str(&format!(" AND offset_ms >= ${n}"));
        }
        if ask.to_ms.is_some() {
            n += 1;
            sql.push_str(&format!(" AND offset_ms < ${n}"));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));
        let mut query = sqlx::query_as::<_, CommentRow>(sqlx::AssertSqlSafe(sql)).bind(live_id);
        if let Some(after) = &ask.after {
            query = query.bind(after.as_str());
        }
        if let Some(from) = ask.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = ask.to_ms {
            query = query.bind(to);
        }
        let rows = query
            .bind(i64::from(ask.limit) + 1)
            .fetch_all(self.db.reader())
            .await?;
        let comments = self.comment_views(rows).await?;
        Ok(Page::from_rows(comments, ask.limit, |c| c.id.clone()))
    }
}
