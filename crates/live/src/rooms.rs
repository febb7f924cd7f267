//! Rooms: created by a streamer or staff, scheduled → live → ended, their moderation
//! settings and bans. Each node keeps what it read of a room for `room_cache_ms`, so a
//! storm of comments does not read the room and its bans once per comment; a change made
//! on this node applies here at once, and on the others within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matsuri_core::clock::Millis;
use matsuri_core::ids::UserId;
use matsuri_core::page::Page;
use matsuri_core::{Identity, Role};
use matsuri_spam::NgWords;

use crate::model::{Ban, LiveError, MAX_TITLE, Moderation, Room, RoomStatus, time};
use crate::service::LiveService;

/// A room as stored.
#[derive(Debug, Clone)]
pub(crate) struct RoomRow {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) streamer_id: String,
    pub(crate) status: RoomStatus,
    pub(crate) started_at: Option<Millis>,
    pub(crate) ended_at: Option<Millis>,
    pub(crate) moderation: Moderation,
}

type Stored = (
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

pub(crate) const ROOM_COLUMNS: &str = "id, title, streamer_id, status, started_at, \
    ended_at, ng_words, allowed_words, rate_limit_per_minute, slow_mode_seconds, links_allowed, \
    display_per_second";

impl From<Stored> for RoomRow {
    fn from(row: Stored) -> Self {
        let words = |text: &str| serde_json::from_str::<Vec<String>>(text).unwrap_or_default();
        RoomRow {
            id: row.0,
            title: row.1,
            streamer_id: row.2,
            status: RoomStatus::parse(&row.3),
            started_at: row.4,
            ended_at: row.5,
            moderation: Moderation {
                ng_words: words(&row.6),
                allowed_words: words(&row.7),
                rate_limit_per_minute: row.8,
                slow_mode_seconds: row.9,
                links_allowed: row.10 != 0,
                display_per_second: row.11,
            },
        }
    }
}

impl RoomRow {
    /// Whether `who` moderates this room: its streamer, or staff.
    pub(crate) fn moderated_by(&self, who: &Identity) -> bool {
        who.role == Role::Staff || self.streamer_id == who.user_id.as_str()
    }
}

/// What a node knows of a room while it takes comments.
pub(crate) struct RoomState {
    pub(crate) room: RoomRow,
    /// The deployment's NG words and the room's, with both allow-lists.
    pub(crate) words: NgWords,
    /// Bans in force when read: user → until (`None`: for good).
    pub(crate) bans: HashMap<String, Option<Millis>>,
}

impl RoomState {
    /// Until when `user` is banned at `now`, if they are (`Some(None)`: for good).
    pub(crate) fn ban_of(&self, user: &str, now: Millis) -> Option<Option<Millis>> {
        match self.bans.get(user) {
            Some(None) => Some(None),
            Some(Some(until)) if *until > now => Some(Some(*until)),
            _ => None,
        }
    }
}

/// Rooms as this node read them, each for a short while.
#[derive(Default)]
pub(crate) struct RoomCache {
    rooms: Mutex<HashMap<String, (Instant, Arc<RoomState>)>>,
}

impl RoomCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<RoomState>)>> {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self, id: &str, ttl: Duration) -> Option<Arc<RoomState>> {
        let rooms = self.lock();
        let (read_at, state) = rooms.get(id)?;
        (read_at.elapsed() < ttl).then(|| state.clone())
    }

    fn keep(&self, id: &str, state: Arc<RoomState>) {
        let mut rooms = self.lock();
        // Rooms nobody comments in any more are let go now and then.
        if rooms.len() > 10_000 {
            rooms.clear();
        }
        rooms.insert(id.to_owned(), (Instant::now(), state));
    }

    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// Title: 1–200 printable characters.
fn title(text: &str) -> Result<String, LiveError> {
    matsuri_core::text::line("title", text, MAX_TITLE).map_err(|e| LiveError::Invalid(vec![e]))
}

impl LiveService {
    /// A new room, scheduled, owned by `who` (a streamer or staff).
    pub async fn create_room(&self, who: &Identity, text: &str) -> Result<Room, LiveError> {
        if !matches!(who.role, Role::Streamer | Role::Staff) {
            return Err(LiveError::Forbidden);
        }
        let title = title(text)?;
        let id = matsuri_core::ids::new_uuid_v7();
        let now = self.clock.now_ms();
        let defaults = Moderation::default();
        sqlx::query(
            "INSERT INTO live_rooms (id, title, streamer_id, status, created_at, ng_words, \
             allowed_words, rate_limit_per_minute, slow_mode_seconds, links_allowed, \
             display_per_second) VALUES ($1, $2, $3, 'scheduled', $4, '[]', '[]', $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&title)
        .bind(who.user_id.as_str())
        .bind(now)
        .bind(defaults.rate_limit_per_minute)
        .bind(defaults.slow_mode_seconds)
        .bind(i64::from(defaults.links_allowed))
        .bind(defaults.display_per_second)
        .execute(self.db.writer())
        .await?;
        self.room(&id).await
    }

    /// A room as stored, read now.
    pub(crate) async fn room_row(&self, id: &str) -> Result<RoomRow, LiveError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM live_rooms WHERE id = $1");
        let row: Option<Stored> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.writer())
            .await?;
        row.map(RoomRow::from).ok_or(LiveError::NotFound)
    }

    /// The room as a node takes comments for it: from the cache while fresh.
    pub(crate) async fn room_state(&self, id: &str) -> Result<Arc<RoomState>, LiveError> {
        let ttl = Duration::from_millis(self.settings.room_cache_ms);
        if let Some(state) = self.rooms.fresh(id, ttl) {
            return Ok(state);
        }
        let room = self.room_row(id).await?;
        let now = self.clock.now_ms();
        let bans: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT user_id, until FROM live_bans WHERE live_id = $1 \
             AND (until IS NULL OR until > $2)",
        )
        .bind(id)
        .bind(now)
        .fetch_all(self.db.writer())
        .await?;
        let mut ng = self.settings.ng_words.clone();
        ng.extend(room.moderation.ng_words.iter().cloned());
        let mut allowed = self.settings.ng_allowed.clone();
        allowed.extend(room.moderation.allowed_words.iter().cloned());
        let state = Arc::new(RoomState {
            words: NgWords::new(&ng, &allowed),
            bans: bans.into_iter().collect(),
            room,
        });
        self.rooms.keep(id, state.clone());
        Ok(state)
    }

    /// A room for anyone to see, with its viewer count.
    pub async fn room(&self, id: &str) -> Result<Room, LiveError> {
        let row = self.room_row(id).await?;
        let mut rooms = self.views(vec![row]).await?;
        rooms.pop().ok_or(LiveError::NotFound)
    }

    /// Rooms newest first, live ones and the rest alike.
    pub async fn rooms(&self, cursor: Option<&str>, limit: u32) -> Result<Page<Room>, LiveError> {
        let fetch = i64::from(limit) + 1;
        let rows: Vec<Stored> = match cursor {
            Some(cursor) => {
                let sql = format!(
                    "SELECT {ROOM_COLUMNS} FROM live_rooms WHERE id < $1 \
                     ORDER BY id DESC LIMIT $2"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(cursor)
                    .bind(fetch)
                    .fetch_all(self.db.reader())
                    .await?
            }
            None => {
                let sql =
                    format!("SELECT {ROOM_COLUMNS} FROM live_rooms ORDER BY id DESC LIMIT $1");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(fetch)
                    .fetch_all(self.db.reader())
                    .await?
            }
        };
        let rooms = self
            .views(rows.into_iter().map(RoomRow::from).collect())
            .await?;
        Ok(Page::from_rows(rooms, limit, |room| room.id.clone()))
    }

    async fn views(&self, rows: Vec<RoomRow>) -> Result<Vec<Room>, LiveError> {
        let ids: Vec<String> = rows.iter().map(|r| r.streamer_id.clone()).collect();
        let names = self.names(&ids).await?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in rows {
            let viewer_count = if row.status == RoomStatus::Live {
                self.realtime.followers(&topic(&row.id)).await?
            } else {
                0
            };
            rooms.push(Room {
                streamer: self.commenter(&names, &row.streamer_id),
                id: row.id,
                title: row.title,
                status: row.status,
                started_at: time(row.started_at),
                ended_at: time(row.ended_at),
                viewer_count,
            });
        }
        Ok(rooms)
    }

    /// The room, if `who` moderates it; 403 for anyone else, 404 when there is none.
    pub(crate) async fn moderated(&self, who: &Identity, id: &str) -> Result<RoomRow, LiveError> {
        let room = self.room_row(id).await?;
        if room.moderated_by(who) {
            Ok(room)
        } else {
            Err(LiveError::Forbidden)
        }
    }

    /// Goes on air (from scheduled; again: the same).
    pub async fn start(&self, who: &Identity, id: &str) -> Result<Room, LiveError> {
        self.moderated(who, id).await?;
        let now = self.clock.now_ms();
        sqlx::query(
            "UPDATE live_rooms SET status = 'live', started_at = $2 \
             WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.rooms.forget(id);
        let room = self.room(id).await?;
        match room.status {
            RoomStatus::Live => Ok(room),
            _ => Err(LiveError::NotActive),
        }
    }

    /// Ends the live (from scheduled or live; again: the same).
    pub async fn end(&self, who: &Identity, id: &str) -> Result<Room, LiveError> {
        self.moderated(who, id).await?;
        let now = self.clock.now_ms();
        sqlx::query(
            "UPDATE live_rooms SET status = 'ended', ended_at = $2 \
             WHERE id = $1 AND status <> 'ended'",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.rooms.forget(id);
        self.room(id).await
    }

    /// The room's moderation settings, for its moderators.
    pub async fn moderation(&self, who: &Identity, id: &str) -> Result<Moderation, LiveError> {
        Ok(self.moderated(who, id).await?.moderation)
    }

    /// Replaces the room's moderation settings.
    pub async fn set_moderation(
        &self,
        who: &Identity,
        id: &str,
        settings: Moderation,
    ) -> Result<Moderation, LiveError> {
        self.moderated(who, id).await?;
        let settings = settings.checked()?;
        let json = |words: &Vec<String>| serde_json::to_string(words).map_err(anyhow::Error::from);
        sqlx::query(
            "UPDATE live_rooms SET ng_words = $2, allowed_words = $3, rate_limit_per_minute = $4, \
             slow_mode_seconds = $5, links_allowed = $6, display_per_second = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(json(&settings.ng_words)?)
        .bind(json(&settings.allowed_words)?)
        .bind(settings.rate_limit_per_minute)
        .bind(settings.slow_mode_seconds)
        .bind(i64::from(settings.links_allowed))
        .bind(settings.display_per_second)
        .execute(self.db.writer())
        .await?;
        self.rooms.forget(id);
        Ok(settings)
    }

    /// Bans `user` from commenting in the room, for `seconds` or for good; again: the
    /// new term replaces the old.
    pub async fn ban(
        &self,
        who: &Identity,
        id: &str,
        user: &UserId,
        seconds: Option<u64>,
    ) -> Result<Ban, LiveError> {
        self.moderated(who, id).await?;
        let now = self.clock.now_ms();
        let until = seconds.map(|s| {
            now.saturating_add(i64::try_from(s.saturating_mul(1_000)).unwrap_or(i64::MAX))
        });
        sqlx::query(
            "INSERT INTO live_bans (live_id, user_id, until, banned_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (live_id, user_id) \
             DO UPDATE SET until = excluded.until, banned_by = excluded.banned_by, \
             created_at = excluded.created_at",
        )
        .bind(id)
        .bind(user.as_str())
        .bind(until)
        .bind(who.user_id.as_str())
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.rooms.forget(id);
        Ok(Ban {
            live_id: id.to_owned(),
            user_id: user.as_str().to_owned(),
            until: time(until),
        })
    }

    /// Lifts a ban; lifting one that is not there changes nothing.
    pub async fn unban(&self, who: &Identity, id: &str, user: &str) -> Result<(), LiveError> {
        self.moderated(who, id).await?;
        sqlx::query("DELETE FROM live_bans WHERE live_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(self.db.writer())
            .await?;
        self.rooms.forget(id);
        Ok(())
    }
}

/// The gateway topic of a room.
pub fn topic(live_id: &str) -> String {
    format!("live:{live_id}")
}
