//! `matsuri loadtest chat idle`: many authenticated sockets opened and held, to measure
//! what one costs the server (its resident memory before and after, per connection) and
//! the load generator.
//!
//! Each socket is held by a task of its own that keeps reading it, so the server's pings
//! are answered (tungstenite answers them as the socket is read) and a socket the server
//! drops is noticed. After the hold a sample of sockets sends `ping` frames and expects
//! `pong`s, and then every socket is closed.
//!
//! Invariants: every socket opened, none dropped during the hold, every sampled socket
//! answered, every socket closed cleanly.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::show;
use super::socket::{Dialer, Incoming, Node, Ws, rss_kib};
use crate::loadtest::client::{Api, run_id};
use crate::loadtest::stats::{Latencies, progress, verdict};

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Sockets to open and hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Users the sockets belong to, taken in turn (a user may hold many sockets).
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Loopback source addresses (127.0.0.1 … 127.0.0.N) the sockets are spread over, each
    /// with its own ephemeral ports; used when the server is on loopback.
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Handshakes (and registrations) in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// The server's process id, to read its resident memory before and after (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds the server is left alone before its memory is read, after the users are
    /// registered and again after every socket is open (its memory takes about half a
    /// minute to settle after a burst).
    #[arg(long, default_value_t = 30)]
    settle_seconds: u64,
    /// Sockets asked for a `pong` after the hold.
    #[arg(long, default_value_t = 1_000)]
    sample: usize,
}

/// What the holders are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hold,
    Ping,
    Close,
}

/// How a held socket ended.
enum Ending {
    /// Closed by us, and the server answered the close.
    Closed,
    /// Closed by us, with no answer in time.
    Unanswered,
    /// Ended before we closed it, and why.
    Dropped(String),
}

pub async fn run(args: IdleArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.connections > 0 && args.users > 0 && args.concurrency > 0,
        "--connections, --users and --concurrency must be positive"
    );
    let node = Node::resolve(&args.url).await?;
    let dialer = Dialer::new(&node, args.sources, args.connections)?;
    let api = Api::new(&args.url, args.concurrency)?;
    let users = args.users.min(args.connections);
    println!(
        "chat idle: {} sockets for {users} users from {} source addresses, {} handshakes \
         in flight, held {} s, against {}",
        args.connections, args.sources, args.concurrency, args.settle_seconds, args.url
    );
    let tokens = api
        .register_many("idle", &run_id(), users, args.concurrency)
        .await?;
    let settle = Duration::from_secs(args.settle_seconds);
    tokio::time::sleep(settle).await;
    let server = args.server_pid.map(|pid| pid.to_string());
    let server_before = server.as_deref().map(rss_kib).transpose()?;
    let client_before = rss_kib("self")?;

    let (phase_tx, phase) = watch::channel(Phase::Hold);
    let sample = args.sample.min(args.connections);
    let every = args.connections / sample.max(1);
    let (pong_tx, mut pongs) = mpsc::channel(sample.max(1));
    let started = Instant::now();
    let bar = progress(args.connections, "connect");
    let opened: Vec<Result<(bool, JoinHandle<Ending>), String>> =
        futures::stream::iter(0..args.connections)
            .map(|i| {
                let (dialer, node, bar) = (&dialer, &node, &bar);
                let token = &tokens[i % tokens.len()];
                let sampled = sample > 0 && i % every == 0 && i / every < sample;
                let pong = sampled.then(|| pong_tx.clone());
                let phase = phase.clone();
                async move {
                    let ws = dialer.open(node, token, i).await;
                    bar.inc(1);
                    ws.map(|ws| (sampled, tokio::spawn(hold(ws, phase, pong))))
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
    let open_time = started.elapsed();
    bar.finish_and_clear();
    drop(pong_tx);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut holders = Vec::with_capacity(opened.len());
    let mut sampled = 0;
    for outcome in opened {
        match outcome {
            Ok((in_sample, holder)) => {
                sampled += usize::from(in_sample);
                holders.push(holder);
            }
            Err(why) => *failures.entry(why).or_default() += 1,
        }
    }
    let open = holders.len();

    tokio::time::sleep(settle).await;
    let server_after = server.as_deref().map(rss_kib).transpose()?;
    let client_after = rss_kib("self")?;
    let dropped = holders.iter().filter(|h| h.is_finished()).count();

    // Each sampled holder answers once: the pong's round trip, or None when its socket
    // is gone; one whose socket failed to open holds no sender.
    phase_tx.send_replace(Phase::Ping);
    let mut pinged = Latencies::default();
    let mut unanswered = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, pongs.recv()).await {
            Ok(Some(Some(took))) => pinged.record(took),
            Ok(Some(None)) => unanswered += 1,
            Ok(None) | Err(_) => break,
        }
    }
    let answered = pinged.len();

    phase_tx.send_replace(Phase::Close);
    let closing = Instant::now();
    let (mut closed, mut unanswered_closes) = (0, 0);
    let mut drops: BTreeMap<String, usize> = BTreeMap::new();
    for holder in holders {
        match holder.await {
            Ok(Ending::Closed) => closed += 1,
            Ok(Ending::Unanswered) => unanswered_closes += 1,
            Ok(Ending::Dropped(why)) => *drops.entry(why).or_default() += 1,
            Err(e) => *drops.entry(format!("holder failed: {e}")).or_default() += 1,
        }
    }
    let close_time = closing.elapsed();

    println!();
    show(
        "connections",
        format!("{open} open of {}", args.connections),
    );
    for (why, n) in &failures {
        show("", format!("failed: {why} × {n}"));
    }
    show(
        "open time",
        format!(
            "{:.2} s ({:.0} sockets/s)",
            open_time.as_secs_f64(),
            open as f64 / open_time.as_secs_f64()
        ),
    );
    let per_socket = |before: u64, after: u64| {
        format!(
            "before {}, after {}: {:.1} KiB per connection",
            mib(before),
            mib(after),
            after.saturating_sub(before) as f64 / open.max(1) as f64
        )
    };
    match (server_before, server_after) {
        (Some(before), Some(after)) => show("server RSS", per_socket(before, after)),
        _ => show("server RSS", "not read (no --server-pid)"),
    }
    show("client RSS", per_socket(client_before, client_after));
    show(
        "ping",
        format!(
            "{answered} of {sampled} answered ({unanswered} sockets gone): {}",
            pinged.summary()
        ),
    );
    show("dropped", format!("{dropped} during the hold"));
    for (why, n) in &drops {
        show("", format!("{why} × {n}"));
    }
    show(
        "closed",
        format!(
            "{closed} cleanly, {unanswered_closes} unanswered, in {:.2} s",
            close_time.as_secs_f64()
        ),
    );

    Ok(verdict([
        ("every socket opened", open == args.connections),
        ("no socket dropped during the hold", dropped == 0),
        (
            "every sampled socket answered its ping",
            answered == sampled,
        ),
        ("every socket closed cleanly", closed == open),
    ]))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Holds one socket until told to close it, reading whatever comes (which answers the
/// server's pings); a sampled holder (`pong` is its channel) pings when told to.
async fn hold(
    mut ws: Ws,
    mut phase: watch::Receiver<Phase>,
    mut pong: Option<mpsc::Sender<Option<Duration>>>,
) -> Ending {
    let mut asked: Option<Instant> = None;
    let why = loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let is_pong = Incoming::parse(text.as_str()).is_some_and(|f| f.kind == "pong");
                    if let (true, Some(at)) = (is_pong, asked.take()) {
                        answer(&mut pong, Some(at.elapsed())).await;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or_else(
                        || "closed by the server".to_owned(),
                        |f| format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the connection ended".to_owned(),
            },
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Close };
                match now {
                    Phase::Hold => {}
                    Phase::Ping if pong.is_some() => {
                        let ping = Message::text(r#"{"type":"ping"}"#);
                        if let Err(e) = ws.send(ping).await {
                            break e.to_string();
                        }
                        asked = Some(Instant::now());
                    }
                    Phase::Ping => {}
                    Phase::Close => return close(ws).await,
                }
            }
        }
    };
    answer(&mut pong, None).await;
    Ending::Dropped(why)
}

/// Reports a sampled socket's ping once.
async fn answer(pong: &mut Option<mpsc::Sender<Option<Duration>>>, took: Option<Duration>) {
    if let Some(tx) = pong.take() {
        // The receiver stops listening only after its deadline; a late answer is lost.
        let _ = tx.send(took).await;
    }
}

/// Sends a close and reads until the server's answer ends the socket.
async fn close(mut ws: Ws) -> Ending {
    if ws.close(None).await.is_err() {
        return Ending::Unanswered;
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    match ended {
        Ok(()) => Ending::Closed,
        Err(_) => Ending::Unanswered,
    }
}
