//! The live seat map (api.md, "Tickets, second round"): every hold, sale and release is
//! noted here once its transaction has committed, and every `seat_frame_interval_ms`
//! this node's changes go to the event's topic `event:<id>` as `seats` frames, through
//! the realtime gateway to every node's subscribers. Each change carries the seat's
//! version, counted up by every change in the database, so a subscriber hearing of one
//! seat from two nodes keeps the later change whatever the order of the frames.
//!
//! The buffer is bounded: past `MAX_PENDING` changes of one event between two frames,
//! the changes are dropped and the next frame says `resync`, so subscribers read the
//! seat map again instead of trusting a gap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use matsuri_realtime::{Frame, Realtime};

use crate::SeatStatus;

/// One seat's change, as a `seats` frame lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatChange {
    pub seat_id: String,
    pub status: SeatStatus,
    pub version: i64,
}

/// Changes kept for one event between two frames.
const MAX_PENDING: usize = 50_000;
/// Changes in one frame, so a frame stays well under the gateway's frame limit.
const PER_FRAME: usize = 500;

/// One event's changes since its last frame.
#[derive(Default)]
struct Pending {
    changes: Vec<SeatChange>,
    overflowed: bool,
}

/// This node's seat changes not yet sent, by event.
#[derive(Default)]
pub(crate) struct SeatFeed(Mutex<HashMap<String, Pending>>);

#[derive(Serialize)]
struct SeatsFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event_id: &'a str,
    changes: &'a [SeatChange],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
}

impl SeatFeed {
    /// Notes committed changes of the event's seats.
    pub(crate) fn note(&self, event_id: &str, changes: impl IntoIterator<Item = SeatChange>) {
        let Ok(mut pending) = self.0.lock() else {
            return;
        };
        let entry = pending.entry(event_id.to_owned()).or_default();
        if entry.overflowed {
            return;
        }
        entry.changes.extend(changes);
        if entry.changes.len() > MAX_PENDING {
            entry.changes.clear();
            entry.overflowed = true;
        }
    }

    fn take(&self) -> HashMap<String, Pending> {
        self.0
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }

    /// Every change noted so far, as the frames to send: one event's changes in the
    /// order noted, at most `PER_FRAME` a frame.
    fn frames(&self) -> Vec<(String, anyhow::Result<Frame>)> {
        let mut frames = Vec::new();
        for (event_id, pending) in self.take() {
            let topic = format!("event:{event_id}");
            if pending.overflowed {
                let frame = Frame::json(&SeatsFrame {
                    kind: "seats",
                    event_id: &event_id,
                    changes: &[],
                    resync: true,
                });
                frames.push((topic.clone(), frame));
            }
            for chunk in pending.changes.chunks(PER_FRAME) {
                let frame = Frame::json(&SeatsFrame {
                    kind: "seats",
                    event_id: &event_id,
                    changes: chunk,
                    resync: false,
                });
                frames.push((topic.clone(), frame));
            }
        }
        frames
    }

    /// Sends what was noted every `interval` until `stop`, and once more then.
    pub(crate) async fn run(
        self: Arc<Self>,
        realtime: Arc<Realtime>,
        interval: Duration,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            for (topic, frame) in self.frames() {
                let sent = match frame {
                    Ok(frame) => realtime.to_topic(&topic, &frame).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => metrics::counter!("matsuri_seat_frames_total").increment(1),
                    Err(e) => tracing::warn!(
                        topic,
                        error = format!("{e:#}"),
                        "could not send a seat map frame"
                    ),
                }
            }
            if stopping {
                return;
            }
        }
    }
}

/// The seats a statement changed, from its `RETURNING event_id, id, version` rows, by
/// event.
pub(crate) fn by_event(
    rows: Vec<(String, String, i64)>,
    status: SeatStatus,
) -> HashMap<String, Vec<SeatChange>> {
    let mut changes: HashMap<String, Vec<SeatChange>> = HashMap::new();
    for (event_id, seat_id, version) in rows {
        changes.entry(event_id).or_default().push(SeatChange {
            seat_id,
            status,
            version,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seat: &str, version: i64) -> SeatChange {
        SeatChange {
            seat_id: seat.to_owned(),
            status: SeatStatus::Held,
            version,
        }
    }

    #[test]
    fn changes_go_out_in_order_a_frame_at_a_time() {
        let feed = SeatFeed::default();
        feed.note("e", (0..PER_FRAME + 1).map(|i| change(&i.to_string(), 1)));
        let frames = feed.frames();
        assert_eq!(frames.len(), 2);
        let texts: Vec<String> = frames
            .iter()
            .map(|(topic, frame)| {
                assert_eq!(topic, "event:e");
                frame
                    .as_ref()
                    .map(|f| f.text().to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            texts[0].starts_with(r#"{"type":"seats","event_id":"e","changes":[{"seat_id":"0""#)
        );
        assert!(texts[1].contains(&format!(r#""seat_id":"{PER_FRAME}""#)));
        assert!(!texts[0].contains("resync"));
        assert!(feed.frames().is_empty(), "sent once");
    }

    #[test]
    fn too_many_changes_between_frames_ask_for_a_resync() {
        let feed = SeatFeed::default();
        feed.note("e", (0..=MAX_PENDING).map(|i| change(&i.to_string(), 1)));
        feed.note("e", [change("late", 2)]);
        let frames = feed.frames();
        assert_eq!(frames.len(), 1);
        let text = frames[0].1.as_ref().map(|f| f.text().to_string());
        assert_eq!(
            text.ok().as_deref(),
            Some(r#"{"type":"seats","event_id":"e","changes":[],"resync":true}"#)
        );
        feed.note("e", [change("next", 3)]);
        assert_eq!(feed.frames().len(), 1, "the feed goes on after a resync");
    }
}
