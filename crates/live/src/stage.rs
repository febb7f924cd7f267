//! The stage: what goes out to a room's viewers, gathered per tick (`live.tick_ms`).
//!
//! A viewer cannot read a thousand comments a second, and sending them all to ten
//! thousand viewers is gigabytes a second. Each tick, a room sends at most its
//! `display_per_second` share of the tick (the fraction carried to the next): first the
//! moderators' comments, then a fair sample of the rest (one per commenter before anyone
//! gets a second, in a random order), and one `comments_skipped` frame with how many were
//! left out. A comment left out still reaches its author's own sockets. Like counts go
//! out once per comment and tick, with the latest count. A comment that reaches
//! `live.highlight_likes` goes to every viewer at the next tick, outside the share: a
//! viewer whose sample left it out sees it then, one who saw it is not sent it again. The
//! archive and the top comments keep everything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use matsuri_realtime::{Frame, Realtime};

use crate::model::Comment;
use crate::rooms::topic;
use crate::writer::Staged;

#[derive(Default)]
struct RoomStage {
    comments: Vec<Staged>,
    /// comment → its like count, the latest known.
    likes: HashMap<String, i64>,
    /// Comments liked enough to reach every viewer.
    highlighted: Vec<Comment>,
    display_per_second: i64,
    /// The part of a comment the last ticks were owed.
    carry: f64,
}

pub(crate) struct Stage {
    realtime: Arc<Realtime>,
    tick: Duration,
    rooms: Mutex<HashMap<String, RoomStage>>,
    started: AtomicBool,
    /// When the last tick went out: a late tick owes the time it really covers.
    last_flush: Mutex<std::time::Instant>,
}

#[derive(Serialize)]
struct CommentFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    comment: &'a Comment,
}

/// The `comment` frame of a comment, sent once per socket.
pub(crate) fn comment_frame(comment: &Comment) -> anyhow::Result<Frame> {
    let frame = Frame::json(&CommentFrame {
        kind: "comment",
        comment,
    })?;
    Ok(match uuid::Uuid::parse_str(&comment.id) {
        Ok(id) => frame.once_per(id.as_u128()),
        Err(_) => frame,
    })
}

/// What one tick sends to one room.
struct Outgoing {
    live_id: String,
    shown: Vec<Staged>,
    skipped: Vec<Staged>,
    likes: Vec<(String, i64)>,
    highlighted: Vec<Comment>,
}

impl Stage {
    pub(crate) fn new(realtime: Arc<Realtime>, tick: Duration) -> Self {
        Self {
            realtime,
            tick,
            rooms: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
            last_flush: Mutex::new(std::time::Instant::now()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomStage>> {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Comments to show in a room.
    pub(crate) fn comments(&self, live_id: &str, display_per_second: i64, comments: Vec<Staged>) {
        let mut rooms = self.lock();
        let room = rooms.entry(live_id.to_owned()).or_default();
        room.display_per_second = display_per_second.max(1);
        room.comments.extend(comments);
    }

    /// A comment's new like count.
    pub(crate) fn likes(&self, live_id: &str, comment_id: &str, likes: i64) {
        let mut rooms = self.lock();
        let room = rooms.entry(live_id.to_owned()).or_default();
        room.likes.insert(comment_id.to_owned(), likes);
    }

    /// A comment liked enough to pass every viewer's sample.
    pub(crate) fn highlight(&self, comment: Comment) {
        let mut rooms = self.lock();
        let room = rooms.entry(comment.live_id.clone()).or_default();
        room.highlighted.push(comment);
    }

    /// Starts the ticks, once per node however often it is asked (the workers and the
    /// HTTP side both stage frames).
    pub(crate) fn start(self: &Arc<Self>, stop: &CancellationToken) -> Option<JoinHandle<()>> {
        if self.started.swap(true, Ordering::SeqCst) {
            return None;
        }
        let (stage, stop) = (self.clone(), stop.clone());
        Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(stage.tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => stage.flush().await,
                }
            }
            stage.flush().await;
        }))
    }

    /// Takes this tick's share of every room and sends it.
    pub(crate) async fn flush(&self) {
        let share = {
            let mut last = self
                .last_flush
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let covered = last.elapsed().as_secs_f64();
            *last = std::time::Instant::now();
            covered.clamp(self.tick.as_secs_f64(), 1.0)
        };
        let outgoing: Vec<Outgoing> = {
            let mut rooms = self.lock();
            rooms.retain(|_, room| {
                !room.comments.is_empty() || !room.likes.is_empty() || !room.highlighted.is_empty()
            });
            metrics::gauge!("matsuri_live_staged_rooms").set(rooms.len() as f64);
            rooms
                .iter_mut()
                .map(|(live_id, room)| {
                    let owed = room.display_per_second as f64 * share + room.carry;
                    let budget = owed.floor() as usize;
                    let comments = std::mem::take(&mut room.comments);
                    // Owing less than one comment carries over; a quiet room owes none.
                    room.carry = if comments.len() > budget {
                        (owed - budget as f64).min(1.0)
                    } else {
                        0.0
                    };
                    let (shown, skipped) = sample(comments, budget);
                    Outgoing {
                        live_id: live_id.clone(),
                        shown,
                        skipped,
                        likes: room.likes.drain().collect(),
                        highlighted: std::mem::take(&mut room.highlighted),
                    }
                })
                .collect()
        };
        for out in outgoing {
            if let Err(e) = self.send(&out).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    live_id = out.live_id,
                    "sending a room's frames failed"
                );
            }
        }
    }

    async fn send(&self, out: &Outgoing) -> anyhow::Result<()> {
        let room = topic(&out.live_id);
        for staged in &out.shown {
            self.realtime
                .to_topic(&room, &comment_frame(&staged.comment)?)
                .await?;
        }
        metrics::counter!("matsuri_live_comments_shown_total").increment(out.shown.len() as u64);
        for comment in &out.highlighted {
            self.realtime
                .to_topic(&room, &comment_frame(comment)?)
                .await?;
        }
        metrics::counter!("matsuri_live_comments_highlighted_total")
            .increment(out.highlighted.len() as u64);
        if !out.skipped.is_empty() {
            metrics::counter!("matsuri_live_comments_skipped_total")
                .increment(out.skipped.len() as u64);
            let frame = Frame::json(&serde_json::json!({
                "type": "comments_skipped",
                "live_id": out.live_id,
                "count": out.skipped.len(),
            }))?;
            self.realtime.to_topic(&room, &frame).await?;
            for staged in &out.skipped {
                let author = [staged.comment.user.id.as_str()];
                self.realtime
                    .to_users(&author, &comment_frame(&staged.comment)?)
                    .await?;
            }
        }
        for (comment_id, likes) in &out.likes {
            let frame = Frame::json(&serde_json::json!({
                "type": "comment_likes",
                "live_id": out.live_id,
                "comment_id": comment_id,
                "likes": likes,
            }))?;
            self.realtime.to_topic(&room, &frame).await?;
        }
        Ok(())
    }
}

/// Splits a tick's comments into those shown (at most `budget`, moderators' always)
/// and those left out, each in the order they were written.
fn sample(comments: Vec<Staged>, budget: usize) -> (Vec<Staged>, Vec<Staged>) {
    if comments.len() <= budget {
        return (comments, Vec::new());
    }
    let mut chosen: HashSet<usize> = comments
        .iter()
        .enumerate()
        .filter(|(_, c)| c.moderator)
        .map(|(i, _)| i)
        .collect();
    // One comment per commenter, commenters in a random order, round after round.
    let mut by_author: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in comments.iter().enumerate() {
        if !c.moderator {
            by_author
                .entry(c.comment.user.id.as_str())
                .or_default()
                .push(i);
        }
    }
    let mut authors: Vec<Vec<usize>> = by_author.into_values().collect();
    authors.shuffle(&mut rand::rng());
    let mut round = 0;
    while chosen.len() < budget {
        let mut took = false;
        for picks in &authors {
            if chosen.len() >= budget {
                break;
            }
            if let Some(i) = picks.get(round) {
                chosen.insert(*i);
                took = true;
            }
        }
        if !took {
            break;
        }
        round += 1;
    }
    let mut shown = Vec::with_capacity(chosen.len());
    let mut skipped = Vec::with_capacity(comments.len().saturating_sub(chosen.len()));
    for (i, c) in comments.into_iter().enumerate() {
        if chosen.contains(&i) {
            shown.push(c);
        } else {
            skipped.push(c);
        }
    }
    (shown, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Commenter;

    fn staged(n: usize, author: &str, moderator: bool) -> Staged {
        Staged {
            comment: Comment {
                id: format!("c{n:04}"),
                live_id: "room".into(),
                user: Commenter {
                    id: author.into(),
                    name: author.into(),
                },
                text: format!("comment {n}"),
                likes: 0,
                created_at: String::new(),
                offset_ms: n as i64,
            },
            moderator,
        }
    }

    #[test]
    fn under_the_budget_everything_is_shown() {
        let comments: Vec<Staged> = (0..3).map(|n| staged(n, "ann", false)).collect();
        let (shown, skipped) = sample(comments, 3);
        assert_eq!(shown.len(), 3);
        assert!(skipped.is_empty());
    }

    #[test]
    fn the_sample_keeps_moderators_and_spreads_over_commenters() {
        // One loud commenter with 90 comments, nine others with one each, a moderator.
        let mut comments: Vec<Staged> = (0..90).map(|n| staged(n, "loud", false)).collect();
        comments.extend((0..9).map(|n| staged(100 + n, &format!("quiet-{n}"), false)));
        comments.push(staged(200, "streamer", true));
        let (shown, skipped) = sample(comments, 10);
        assert_eq!(shown.len(), 10);
        assert_eq!(skipped.len(), 90);
        assert!(
            shown.iter().any(|c| c.moderator),
            "the moderator's comment is shown"
        );
        let loud = shown.iter().filter(|c| c.comment.user.id == "loud").count();
        assert!(
            loud <= 1,
            "the loud commenter gets one place at most, like each other"
        );
        let ids: Vec<&str> = shown.iter().map(|c| c.comment.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "shown in the order written");
    }

    #[test]
    fn moderators_pass_even_over_the_budget() {
        let comments: Vec<Staged> = (0..5).map(|n| staged(n, "mod", true)).collect();
        let (shown, skipped) = sample(comments, 2);
        assert_eq!(shown.len(), 5);
        assert!(skipped.is_empty());
    }
}
