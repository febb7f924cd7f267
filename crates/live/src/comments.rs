//! Posting a comment, in the seed's order: the room is on air and the user not banned;
//! the rate limit (and slow mode); the spam check (NG words and links, repeats, the
//! classifier); then the comment is stored, shown or held for review. Moderators are
//! exempt from the limits and the spam check. A refused comment stores nothing, though
//! it counts against the rate limit as any attempt does.

use std::time::Duration;

use matsuri_coord::Window;
use matsuri_core::Identity;
use matsuri_core::clock::Millis;
use matsuri_spam::{BLOCK, HOLD, NEAR_DUPLICATE, is_flood, normalize, similarity};

use crate::model::{Comment, Held, LiveError, MAX_COMMENT, Posted, RoomStatus, SpamReason};
use crate::rooms::RoomState;
use crate::service::LiveService;
use crate::writer::NewComment;

/// Normalised characters a comment needs before the classifier scores it.
const CLASSIFIED_FROM: usize = 4;

/// Recent comments of one user a new one is compared with.
const RECENT_COMPARED: usize = 20;

/// Whether the text carries a link: a scheme, `www.`, or a dotted host with a common
/// top-level domain.
pub(crate) fn has_link(text: &str) -> bool {
    let lower = text.to_lowercase();
    if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        return true;
    }
    const TLDS: [&str; 12] = [
        ".com", ".net", ".org", ".io", ".jp", ".ly", ".me", ".xyz", ".info", ".co", ".gg", ".tv",
    ];
    lower.split(|c: char| c.is_whitespace()).any(|word| {
        TLDS.iter().any(|tld| {
            word.find(tld).is_some_and(|at| {
                at > 0
                    && word[..at]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && word[at + tld.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_ascii_alphanumeric())
            })
        })
    })
}

impl LiveService {
    /// Posts `text` as `who` in room `live_id`.
    pub async fn post(
        &self,
        who: &Identity,
        live_id: &str,
        text: &str,
    ) -> Result<Posted, LiveError> {
        let text = matsuri_core::text::line("text", text, MAX_COMMENT)
            .map_err(|e| LiveError::Invalid(vec![e]))?;
        let state = self.room_state(live_id).await?;
        let room = &state.room;
        if room.status != RoomStatus::Live {
            return Err(LiveError::NotActive);
        }
        let now = self.clock.now_ms();
        let user = who.user_id.as_str();
        if let Some(until) = state.ban_of(user, now) {
            return Err(LiveError::Banned { until });
        }
        let moderator = room.moderated_by(who);
        let id = matsuri_core::ids::new_uuid_v7();
        let mut score = 0.0;
        if !moderator {
            self.take_slot(&state, user, &id, now).await?;
            score = self.check(&state, user, &text, now).await?;
        }
        let held = score >= HOLD;
        let names = self.names(&[user.to_owned()]).await?;
        let comment = Comment {
            id: id.clone(),
            live_id: live_id.to_owned(),
            user: self.commenter(&names, user),
            text,
            likes: 0,
            created_at: matsuri_core::timefmt::rfc3339(now),
            offset_ms: now.saturating_sub(room.started_at.unwrap_or(now)),
        };
        self.writer
            .write(NewComment {
                comment: comment.clone(),
                user_id: user.to_owned(),
                created_ms: now,
                status: if held { "held" } else { "shown" },
                score,
                moderator,
                display_per_second: room.moderation.display_per_second,
            })
            .await?;
        metrics::counter!("matsuri_live_comments_total", "outcome" => if held { "held" } else { "shown" })
            .increment(1);
        Ok(if held {
            Posted::Held(Held {
                comment_id: id,
                status: "held".into(),
            })
        } else {
            Posted::Shown(comment)
        })
    }

    /// Takes a slot of the user's minute and, with slow mode on, of their slow-mode
    /// window, both or neither.
    async fn take_slot(
        &self,
        state: &RoomState,
        user: &str,
        id: &str,
        now: Millis,
    ) -> Result<(), LiveError> {
        let room = &state.room;
        let mut windows = vec![Window {
            key: format!("live:rate:{}:{user}", room.id),
            limit: u64::try_from(room.moderation.rate_limit_per_minute).unwrap_or(0),
            length: Duration::from_secs(60),
        }];
        if room.moderation.slow_mode_seconds > 0 {
            windows.push(Window {
                key: format!("live:slow:{}:{user}", room.id),
                limit: 1,
                length: Duration::from_secs(
                    u64::try_from(room.moderation.slow_mode_seconds).unwrap_or(0),
                ),
            });
        }
        match self.coord.take_slots(&windows, id, now).await? {
            Ok(()) => Ok(()),
            Err(wait) => {
                metrics::counter!("matsuri_live_refused_total", "reason" => "rate_limited")
                    .increment(1);
                Err(LiveError::RateLimited {
                    retry_after_seconds: wait.as_millis().div_ceil(1_000).max(1) as u64,
                })
            }
        }
    }

    /// The spam check; answers the classifier's score of a comment that passes.
    async fn check(
        &self,
        state: &RoomState,
        user: &str,
        text: &str,
        now: Millis,
    ) -> Result<f64, LiveError> {
        let refuse = |reason: SpamReason, detail: &'static str| {
            metrics::counter!("matsuri_live_refused_total", "reason" => reason.as_str())
                .increment(1);
            Err(LiveError::Spam { reason, detail })
        };
        let normalized = normalize(text);
        if state.words.find(&normalized).is_some() {
            return refuse(
                SpamReason::NgWord,
                "the comment holds a word this room does not allow",
            );
        }
        if !state.room.moderation.links_allowed && has_link(text) {
            return refuse(SpamReason::NgWord, "links are not allowed in this room");
        }
        if is_flood(&normalized) {
            return refuse(
                SpamReason::Repeated,
                "the comment is one character repeated",
            );
        }
        if self.repeats(&state.room.id, user, &normalized, now).await? {
            return refuse(
                SpamReason::Repeated,
                "the comment repeats one of yours from just before",
            );
        }
        // A word or two tells a model next to nothing; the checks above cover them.
        if normalized.chars().count() < CLASSIFIED_FROM && !has_link(text) {
            return Ok(0.0);
        }
        let score = self.model.current().score(text);
        if score >= BLOCK {
            return refuse(SpamReason::Classifier, "the comment looks like spam");
        }
        Ok(score)
    }

    /// Whether the user said this, or nearly this, within the repeat window; records it
    /// either way. The exact repeat is caught by one atomic add, so two copies sent at
    /// once cannot both pass.
    async fn repeats(
        &self,
        live_id: &str,
        user: &str,
        normalized: &str,
        now: Millis,
    ) -> Result<bool, LiveError> {
        let window = Duration::from_secs(self.settings.repeat_window_seconds.max(1));
        let key = format!("live:said:{live_id}:{user}");
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self.coord
            .zrem_up_to(&key, now.saturating_sub(window_ms))
            .await?;
        if !self.coord.zadd_nx(&key, normalized, now).await? {
            return Ok(true);
        }
        // The set lives as long as its newest entry may matter.
        self.coord
            .zadd_each(std::slice::from_ref(&key), normalized, now, window)
            .await?;
        // Applause and laughter (「8888」, 「ｗｗｗ」) come again and again: only exact
        // repeats of them count.
        let mut distinct: Vec<char> = normalized.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() <= 2 {
            return Ok(false);
        }
        let recent = self.coord.zrange_head(&key, RECENT_COMPARED + 1).await?;
        Ok(recent
            .iter()
            .filter(|said| said.as_str() != normalized)
            .any(|said| similarity(said, normalized) >= NEAR_DUPLICATE))
    }
}

#[cfg(test)]
mod tests {
    use super::has_link;

    #[test]
    fn links_are_seen_in_their_usual_shapes() {
        for text in [
            "see https://example.com",
            "HTTP://x.y",
            "go to www.shop",
            "bit.ly/abc",
            "cheap at example.com!",
        ] {
            assert!(has_link(text), "{text}");
        }
        for text in [
            "最高！",
            "see you at 8.30",
            "the .com era",
            "Mr.Children の曲",
        ] {
            assert!(!has_link(text), "{text}");
        }
    }
}
