//! `matsuri loadtest live ingest`: `--concurrency` clients post comments into one room for
//! `--duration-seconds`, each comment from the next of `--users` viewers in turn (the
//! room's limit is raised to 600 a minute, so the users' limits are not what stops
//! them), each through the rate limit and the spam check like any viewer's.
//!
//! Prints accepted comments a second, the answers by status, and the latency. Invariants:
//! no answer is a server error, and the archive holds exactly the comments answered 201.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::{open_room, saying, show};
use crate::loadtest::client::{Api, StaffLogin, run_id};
use crate::loadtest::stats::{Latencies, verdict};

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Viewers commenting, in turn.
    #[arg(long, default_value_t = 4_000)]
    users: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    duration_seconds: u64,
    /// First, for as long, the same clients on `GET /healthz`: the most requests a second
    /// this client and server reach on this machine, for comparison.
    #[arg(long)]
    baseline: bool,
    #[command(flatten)]
    staff: StaffLogin,
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    reasons: BTreeMap<String, u64>,
    latency: Latencies,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.users > 0 && args.concurrency > 0 && args.duration_seconds > 0,
        "--users, --concurrency and --duration-seconds must be positive"
    );
    let api = Api::new(&args.url, args.concurrency)?;
    let staff = api.login_staff(&args.staff).await?;
    let room = open_room(&api, &staff, 25).await?;
    println!(
        "live ingest: {} viewers, {} in flight, {} s, against {}",
        args.users, args.concurrency, args.duration_seconds, args.url
    );
    let tokens = Arc::new(
        api.register_many("viewer", &run_id(), args.users, args.concurrency)
            .await?,
    );

    if args.baseline {
        let rate = baseline(&args).await?;
        show(
            "GET /healthz",
            format!("{rate:.0}/s with the same clients (the ceiling here)"),
        );
    }
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (api, tokens, next, stop, room) = (
                api.clone(),
                tokens.clone(),
                next.clone(),
                stop.clone(),
                room.clone(),
            );
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let who = (n % tokens.len() as u64) as usize;
                    let text = saying(who, n / tokens.len() as u64);
                    let sent = Instant::now();
                    let answer = api
                        .send(
                            Method::POST,
                            &format!("/live/{room}/comments"),
                            Some(&tokens[who]),
                            Some(&json!({"text": text})),
                            None,
                        )
                        .await;
                    tally.latency.record(sent.elapsed());
                    let (status, body) = match answer {
                        Ok(answer) => answer,
                        Err(_) => (0, serde_json::Value::Null),
                    };
                    *tally.statuses.entry(status).or_default() += 1;
                    if let Some(reason) = body["reason"].as_str() {
                        *tally.reasons.entry(reason.to_owned()).or_default() += 1;
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.duration_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for client in clients {
        let part = client.await?;
        for (status, n) in part.statuses {
            *tally.statuses.entry(status).or_default() += n;
        }
        for (reason, n) in part.reasons {
            *tally.reasons.entry(reason).or_default() += n;
        }
        tally.latency.extend(part.latency);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = tally.statuses.get(&201).copied().unwrap_or(0);
    let failed: u64 = tally
        .statuses
        .iter()
        .filter(|(status, _)| **status == 0 || **status >= 500)
        .map(|(_, n)| n)
        .sum();

    println!();
    show(
        "accepted",
        format!(
            "{accepted} comments in {elapsed:.1} s: {:.0}/s",
            accepted as f64 / elapsed
        ),
    );
    show("answers", format!("{:?}", tally.statuses));
    if !tally.reasons.is_empty() {
        show("refused as spam", format!("{:?}", tally.reasons));
    }
    show("latency", tally.latency.summary());
    let archived = count_archive(&api, &room).await?;
    show("archived", archived);
    Ok(verdict([
        ("no server errors or failed requests", failed == 0),
        (
            "the archive holds every accepted comment",
            archived == accepted,
        ),
    ]))
}

/// Requests a second to `GET /healthz` from `--concurrency` clients.
async fn baseline(args: &IngestArgs) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let url = format!("{}/healthz", args.url.trim_end_matches('/'));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut done = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(res) = http.get(&url).send().await
                        && res.bytes().await.is_ok()
                    {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.duration_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = 0;
    for client in clients {
        done += client.await?;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Comments in the room's archive, counted page by page.
async fn count_archive(api: &Api, room: &str) -> anyhow::Result<u64> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<serde::de::IgnoredAny>,
        next_cursor: Option<String>,
    }
    let mut count = 0_u64;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/live/{room}/comments?limit=100&cursor={c}"),
            None => format!("/live/{room}/comments?limit=100"),
        };
        let page: Page = api.get_as(&path, "").await?;
        count += page.items.len() as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}
