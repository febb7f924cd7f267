//! `matsuri loadtest live fanout`: `--viewers` sockets follow one room (spread over
//! loopback source addresses; with `--url2`, every other viewer on a second node), while
//! `--posters` viewers post `--rate` comments a second for `--duration-seconds`.
//!
//! Each comment ends with `#t<ns>`, the nanoseconds since the run started when it was
//! posted, so a viewer learns post → receipt from the frame alone. Prints the accepted
//! comments, post → receipt at the viewers, frames, comments and bytes each viewer is
//! sent a second, and the sample's share. Invariants: every viewer was sent each
//! accepted comment or counted it in a `comments_skipped`, exactly once in all, and
//! no socket was dropped.

use std::borrow::Cow;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::{open_room, saying, show};
use crate::loadtest::chat::socket::{Dialer, Node, Ws};
use crate::loadtest::client::{Api, StaffLogin, run_id};
use crate::loadtest::stats::{Latencies, progress, verdict};

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A second node sharing the first one's database and Redis: every other viewer
    /// connects here.
    #[arg(long)]
    url2: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    viewers: usize,
    /// Viewers who post (their own sockets are not counted).
    #[arg(long, default_value_t = 200)]
    posters: usize,
    /// Comments a second, in all.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,
    #[arg(long, default_value_t = 30)]
    duration_seconds: u64,
    /// Each viewer is sent at most this many comments a second (the room's setting).
    #[arg(long, default_value_t = 25)]
    display_per_second: i64,
    /// After the last post, stop waiting once nothing has come for this many seconds.
    #[arg(long, default_value_t = 5)]
    drain_seconds: u64,
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Registrations and handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[command(flatten)]
    staff: StaffLogin,
}

/// The fields of a room frame a viewer looks at.
#[derive(Deserialize)]
struct RoomFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    count: u64,
}

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    comments: u64,
    skipped: u64,
    frames: u64,
    bytes: u64,
    latency: Latencies,
    dropped: bool,
}

/// The time a comment was posted, from its `#t<ns>` ending.
fn posted_at(text: &str) -> Option<u64> {
    text.rsplit_once("#t")?.1.parse().ok()
}

async fn watch_room(
    mut ws: Ws,
    room: String,
    clock: Instant,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let subscribe = json!({"type": "subscribe", "topic": format!("live:{room}")}).to_string();
    if ws.send(Message::text(subscribe)).await.is_err() {
        seen.dropped = true;
        return seen;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(frame) = serde_json::from_str::<RoomFrame>(&text) else { continue };
                    match frame.kind.as_ref() {
                        "comment" => {
                            seen.frames += 1;
                            seen.bytes += text.len() as u64;
                            seen.comments += 1;
                            if let Some(at) = frame.text.as_deref().and_then(posted_at) {
                                let now = clock.elapsed().as_nanos() as u64;
                                seen.latency.record(Duration::from_nanos(now.saturating_sub(at)));
                            }
                        }
                        "comments_skipped" => {
                            seen.frames += 1;
                            seen.bytes += text.len() as u64;
                            seen.skipped += frame.count;
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.dropped = true;
                    break;
                }
            }
        }
    }
    seen
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.viewers > 0 && args.posters > 0 && args.rate > 0.0 && args.duration_seconds > 0,
        "--viewers, --posters, --rate and --duration-seconds must be positive"
    );
    let node1 = Node::resolve(&args.url).await?;
    let node2 = match &args.url2 {
        Some(url) => Some(Node::resolve(url).await?),
        None => None,
    };
    let dialer = Dialer::new(&node1, args.sources, args.viewers)?;
    let api = Api::new(&args.url, args.concurrency.max(64))?;
    let staff = api.login_staff(&args.staff).await?;
    let room = open_room(&api, &staff, args.display_per_second).await?;
    println!(
        "live fanout: {} viewers, {} posters, {} comments/s for {} s, display {} a second, against {}{}",
        args.viewers,
        args.posters,
        args.rate,
        args.duration_seconds,
        args.display_per_second,
        args.url,
        args.url2
            .as_deref()
            .map(|url| format!(" and {url} (every other viewer)"))
            .unwrap_or_default()
    );
    let id = run_id();
    let viewers = api
        .register_many("watcher", &id, args.viewers, args.concurrency)
        .await?;
    let posters = api
        .register_many("poster", &id, args.posters, args.concurrency)
        .await?;

    let clock = Instant::now();
    let (stop_tx, stop) = watch::channel(false);
    let bar = progress(args.viewers, "connect");
    let opened: Vec<Result<tokio::task::JoinHandle<Seen>, String>> =
        futures::stream::iter(viewers.iter().enumerate())
            .map(|(i, token)| {
                let node = match &node2 {
                    Some(node2) if i % 2 == 1 => node2,
                    _ => &node1,
                };
                let (dialer, bar, stop, room) = (&dialer, &bar, stop.clone(), room.clone());
                async move {
                    let ws = dialer.open(node, token, i).await;
                    bar.inc(1);
                    ws.map(|ws| tokio::spawn(watch_room(ws, room, clock, stop)))
                }
            })
            .buffered(args.concurrency)
            .collect()
            .await;
    bar.finish_and_clear();
    let watchers = opened
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|why| anyhow::anyhow!("a viewer's socket did not open: {why}"))?;
    let followers = wait_for_viewers(&api, &room, args.viewers as u64).await?;

    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let total = (args.rate * args.duration_seconds as f64) as u64;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let posting = Instant::now();
    let mut sends = Vec::with_capacity(total as usize);
    for n in 0..total {
        tokio::time::sleep_until((posting + period * n as u32).into()).await;
        let who = (n as usize) % posters.len();
        let text = format!(
            "{} #t{}",
            saying(who, n / posters.len() as u64),
            clock.elapsed().as_nanos()
        );
        let (api, token, room, accepted, refused) = (
            api.clone(),
            posters[who].clone(),
            room.clone(),
            accepted.clone(),
            refused.clone(),
        );
        sends.push(tokio::spawn(async move {
            let answer = api
                .send(
                    Method::POST,
                    &format!("/live/{room}/comments"),
                    Some(&token),
                    Some(&json!({"text": text})),
                    None,
                )
                .await;
            match answer {
                Ok((201, _)) => accepted.fetch_add(1, Ordering::Relaxed),
                _ => refused.fetch_add(1, Ordering::Relaxed),
            };
        }));
    }
    for send in sends {
        send.await.context("a post failed")?;
    }
    let posted_for = posting.elapsed();
    tokio::time::sleep(Duration::from_secs(args.drain_seconds)).await;
    stop_tx.send_replace(true);
    let mut seen = Vec::with_capacity(watchers.len());
    for watcher in watchers {
        seen.push(watcher.await.context("a viewer's task failed")?);
    }

    let accepted = accepted.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    let secs = posted_for.as_secs_f64();
    let viewers = seen.len() as f64;
    let (mut latency, mut comments, mut skipped, mut frames, mut bytes) =
        (Latencies::default(), 0, 0, 0, 0);
    let mut exact = true;
    for s in &mut seen {
        latency.extend(std::mem::take(&mut s.latency));
        comments += s.comments;
        skipped += s.skipped;
        frames += s.frames;
        bytes += s.bytes;
        exact &= s.comments + s.skipped == accepted;
    }
    let dropped = seen.iter().filter(|s| s.dropped).count();
    println!();
    show("viewers counted", followers);
    show(
        "accepted",
        format!(
            "{accepted} comments in {secs:.1} s ({:.0}/s), {refused} refused",
            accepted as f64 / secs
        ),
    );
    show(
        "post→receipt",
        format!("{}  ({} receipts)", latency.summary(), latency.len()),
    );
    show(
        "per viewer",
        format!(
            "{:.1} frames/s, {:.1} comments/s, {:.0} bytes/s",
            frames as f64 / viewers / secs,
            comments as f64 / viewers / secs,
            bytes as f64 / viewers / secs
        ),
    );
    show(
        "sample's share",
        format!(
            "{:.1} % shown, {:.1} % counted as skipped",
            100.0 * comments as f64 / (comments + skipped).max(1) as f64,
            100.0 * skipped as f64 / (comments + skipped).max(1) as f64
        ),
    );
    show("dropped sockets", dropped);
    Ok(verdict([
        (
            "every viewer was sent or told of each comment exactly once",
            exact,
        ),
        ("no socket was dropped", dropped == 0),
    ]))
}

/// Waits until the room counts every viewer (they have all subscribed); the count.
async fn wait_for_viewers(api: &Api, room: &str, viewers: u64) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct Room {
        viewer_count: u64,
    }
    let mut count = 0;
    for _ in 0..600 {
        count = api
            .get_as::<Room>(&format!("/live/{room}"), "")
            .await?
            .viewer_count;
        if count >= viewers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(count)
}
