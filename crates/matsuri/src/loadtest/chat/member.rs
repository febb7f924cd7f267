//! One member of a talking group: a task that holds the member's socket, sends `send`
//! frames on its schedule while the group talks, and records what comes back.
//!
//! A message's `client_msg_id` is `t<ns>-<n>`: the nanoseconds since the run started
//! when it was sent, and the member's count. Every process reads the same clock, so a
//! receiver learns the send→receive time from the frame alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::socket::{Incoming, Ws, uuid_bits};
use crate::loadtest::stats::Latencies;

/// What the members are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connected; wait for the others.
    Ready,
    /// Send on schedule.
    Talk,
    /// Stop sending; keep reading what is still on its way.
    Quiet,
    Close,
}

/// Running totals over every member, for the figures printed each second.
#[derive(Debug, Default)]
pub struct Counts {
    /// `send` frames written.
    pub sent: AtomicU64,
    /// `sent` answers.
    pub answered: AtomicU64,
    /// Error frames.
    pub refused: AtomicU64,
    /// Message frames owed: each answered message, once for every other member.
    pub owed: AtomicU64,
    /// Message frames received of the other members' messages.
    pub delivered: AtomicU64,
    /// When the last one came, in nanoseconds since the run started.
    pub last_delivery: AtomicU64,
}

/// A member's socket and place.
pub struct Member {
    pub ws: Ws,
    pub user_id: Arc<str>,
    pub group: usize,
    pub chat_id: Arc<str>,
    /// The other members of the group, who each get this member's messages.
    pub others: u64,
    /// Time between two of this member's messages.
    pub period: Duration,
    /// When, after talking starts, this member sends its first.
    pub offset: Duration,
}

/// What one member saw.
#[derive(Debug, Default)]
pub struct Report {
    pub group: usize,
    /// The ids of this member's messages, from their `sent` answers.
    pub sent_ids: Vec<u128>,
    /// The ids of the message frames received of the other members' messages, in
    /// arrival order.
    pub received: Vec<u128>,
    /// Message frames of this member's own messages, which its socket should not get.
    pub echoes: u64,
    /// Send → receive, for each message frame.
    pub latency: Latencies,
    /// Send → `sent` answer, for each of this member's messages.
    pub acks: Latencies,
    /// Frames that could not be read (or a message frame without a readable id).
    pub unreadable: u64,
    pub first_refusal: Option<String>,
    /// Why the socket ended before it was closed, if it did.
    pub dropped: Option<String>,
}

/// Nanoseconds since `clock`.
pub fn since(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// When a message was sent, from its `client_msg_id` (`t<ns>-<n>`).
pub fn sent_at(client_msg_id: &str) -> Option<u64> {
    let (ns, _) = client_msg_id.strip_prefix('t')?.split_once('-')?;
    ns.parse().ok()
}

/// Runs a member until told to close (or until its socket ends) and returns what it saw.
pub async fn talk(
    mut m: Member,
    mut phase: watch::Receiver<Phase>,
    clock: Instant,
    counts: Arc<Counts>,
) -> Report {
    let mut report = Report {
        group: m.group,
        ..Report::default()
    };
    let mut ticks: Option<Interval> = None;
    let mut n = 0_u64;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Close };
                match now {
                    Phase::Ready => {}
                    Phase::Talk => {
                        let first = tokio::time::Instant::now() + m.offset;
                        let mut every = tokio::time::interval_at(first, m.period);
                        // Messages due while the client was busy go out at once: the
                        // offered rate stays what was asked.
                        every.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        ticks = Some(every);
                    }
                    Phase::Quiet => ticks = None,
                    Phase::Close => {
                        close(m.ws).await;
                        return report;
                    }
                }
            }
            () = next_tick(&mut ticks) => {
                let text = format!(
                    r#"{{"type":"send","chat_id":"{}","client_msg_id":"t{}-{n}","text":"load test message {n}"}}"#,
                    m.chat_id,
                    since(clock)
                );
                n += 1;
                if let Err(e) = m.ws.send(Message::text(text)).await {
                    report.dropped = Some(e.to_string());
                    return report;
                }
                counts.sent.fetch_add(1, Ordering::Relaxed);
            }
            frame = m.ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let me = Me { user_id: &m.user_id, others: m.others };
                    read_frame(text.as_str(), since(clock), me, &counts, &mut report);
                }
                Some(Ok(Message::Close(frame))) => {
                    report.dropped = Some(frame.map_or_else(
                        || "closed by the server".to_owned(),
                        |f| format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                    ));
                    return report;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    report.dropped = Some(e.to_string());
                    return report;
                }
                None => {
                    report.dropped = Some("the connection ended".to_owned());
                    return report;
                }
            }
        }
    }
}

async fn next_tick(ticks: &mut Option<Interval>) {
    match ticks {
        Some(every) => {
            every.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Who reads a frame: the member, and how many others get each of its messages.
#[derive(Clone, Copy)]
struct Me<'a> {
    user_id: &'a str,
    others: u64,
}

/// Records one server frame that came `now` nanoseconds into the run.
fn read_frame(text: &str, now: u64, me: Me<'_>, counts: &Counts, report: &mut Report) {
    let Some(frame) = Incoming::parse(text) else {
        report.unreadable += 1;
        return;
    };
    let took = |client_msg_id: Option<&str>| {
        client_msg_id
            .and_then(sent_at)
            .map(|at| Duration::from_nanos(now.saturating_sub(at)))
    };
    match frame.kind {
        "message" if frame.sender_id == Some(me.user_id) => report.echoes += 1,
        "message" => {
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            counts.last_delivery.fetch_max(now, Ordering::Relaxed);
            if let Some(took) = took(frame.client_msg_id) {
                report.latency.record(took);
            }
            match frame.msg_id.and_then(uuid_bits) {
                Some(id) => report.received.push(id),
                None => report.unreadable += 1,
            }
        }
        "sent" => {
            counts.answered.fetch_add(1, Ordering::Relaxed);
            counts.owed.fetch_add(me.others, Ordering::Relaxed);
            if let Some(took) = took(frame.client_msg_id) {
                report.acks.record(took);
            }
            match frame.msg_id.and_then(uuid_bits) {
                Some(id) => report.sent_ids.push(id),
                None => report.unreadable += 1,
            }
        }
        "error" => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            report.first_refusal.get_or_insert_with(|| text.to_owned());
        }
        _ => {}
    }
}

/// Sends a close and reads until the server's answer ends the socket (or 5 s pass).
async fn close(mut ws: Ws) {
    if ws.close(None).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_times_come_from_the_client_msg_id() {
        assert_eq!(sent_at("t123456789-0"), Some(123_456_789));
        assert_eq!(sent_at("t5-17"), Some(5));
        for other in ["", "t", "t-1", "x5-1", "t5", "tx-1"] {
            assert_eq!(sent_at(other), None, "{other}");
        }
    }

    #[test]
    fn frames_are_counted_by_kind() {
        let counts = Counts::default();
        let mut report = Report::default();
        let me = Me {
            user_id: "me",
            others: 9,
        };
        let id = "0192f0e4-aaaa-7bbb-8ccc-0123456789ab";
        let frames = [
            format!(
                r#"{{"type":"sent","chat_id":"c","client_msg_id":"t100-0","msg_id":"{id}","created_at":"x"}}"#
            ),
            format!(
                r#"{{"type":"message","chat_id":"c","msg_id":"{id}","sender_id":"s","text":"hi","created_at":"x","client_msg_id":"t100-0"}}"#
            ),
            format!(
                r#"{{"type":"message","chat_id":"c","msg_id":"{id}","sender_id":"me","text":"hi","created_at":"x","client_msg_id":"t100-0"}}"#
            ),
            r#"{"type":"unread","chat_id":"c","count":3}"#.to_owned(),
            r#"{"type":"error","code":"invalid_frame"}"#.to_owned(),
            "{".to_owned(),
        ];
        for (i, frame) in frames.iter().enumerate() {
            read_frame(frame, 400 + 700 * i as u64, me, &counts, &mut report);
        }
        assert_eq!(counts.answered.load(Ordering::Relaxed), 1);
        assert_eq!(counts.owed.load(Ordering::Relaxed), 9);
        assert_eq!(counts.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(counts.last_delivery.load(Ordering::Relaxed), 1_100);
        assert_eq!(counts.refused.load(Ordering::Relaxed), 1);
        assert_eq!(
            report.sent_ids,
            vec![0x0192f0e4_aaaa_7bbb_8ccc_0123456789ab]
        );
        assert_eq!(report.received, report.sent_ids);
        assert_eq!(report.echoes, 1);
        assert_eq!((report.acks.len(), report.latency.len()), (1, 1));
        assert_eq!(report.unreadable, 1);
        assert!(report.first_refusal.is_some());
    }
}
