//! `matsuri loadtest chat messages`: groups whose members all talk at once. Each member
//! holds one socket; together they send `--rate` messages a second for
//! `--duration-seconds`, each member in turn, and every member records the messages of
//! the others as they arrive. With `--url2`, every other member of each group connects
//! to a second node, so most messages cross between nodes.
//!
//! Prints the messages sent and delivered each second, then the totals, delivered
//! messages a second, and the send→`sent` and send→receive latencies. Invariants: every
//! `send` was answered `sent`; every member received every message of the other members
//! of its group exactly once, and nothing else; no socket was dropped.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::member::{Counts, Member, Phase, Report, since, talk};
use super::show;
use super::socket::{Dialer, Node};
use crate::loadtest::client::{Account, Api, run_id};
use crate::loadtest::stats::{Latencies, progress, verdict};

#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A second node sharing the first one's database and Redis: every other member of
    /// each group connects here.
    #[arg(long)]
    url2: Option<String>,
    /// Chats, each with its own members.
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// Members of each chat: 2 is a direct chat, more a group (at most 256).
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// How long the members talk.
    #[arg(long, default_value_t = 10)]
    duration_seconds: u64,
    /// Messages a second sent in all, shared evenly by every member of every group.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// After the last send, stop waiting for what is still on its way once nothing has
    /// come for this many seconds.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
    /// Loopback source addresses the sockets are spread over (see `chat idle`).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Registrations, chats and handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

pub async fn run(args: MessagesArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.groups > 0 && (2..=256).contains(&args.group_size),
        "--groups must be positive and --group-size 2 to 256"
    );
    anyhow::ensure!(
        args.rate > 0.0 && args.duration_seconds > 0 && args.concurrency > 0,
        "--rate, --duration-seconds and --concurrency must be positive"
    );
    let members = args.groups * args.group_size;
    let node1 = Node::resolve(&args.url).await?;
    let node2 = match &args.url2 {
        Some(url) => Some(Node::resolve(url).await?),
        None => None,
    };
    let dialer = Dialer::new(&node1, args.sources, members)?;
    let api = Api::new(&args.url, args.concurrency)?;
    println!(
        "chat messages: {} groups of {}, {} messages/s in all for {} s, against {}{}",
        args.groups,
        args.group_size,
        args.rate,
        args.duration_seconds,
        args.url,
        args.url2
            .as_deref()
            .map(|url| format!(" and {url} (every other member)"))
            .unwrap_or_default()
    );
    let accounts = api
        .register_accounts("talker", &run_id(), members, args.concurrency)
        .await?;
    let chats = create_chats(&api, &accounts, &args).await?;

    let clock = Instant::now();
    let counts = Arc::new(Counts::default());
    let (phase_tx, phase) = watch::channel(Phase::Ready);
    let bar = progress(members, "connect");
    let opened: Vec<Result<JoinHandle<Report>, String>> = futures::stream::iter(0..members)
        .map(|k| {
            let (group, place) = (k / args.group_size, k % args.group_size);
            let node = match &node2 {
                Some(node2) if place % 2 == 1 => node2,
                _ => &node1,
            };
            let (dialer, bar, phase, counts) = (&dialer, &bar, phase.clone(), counts.clone());
            let chat_id = chats[group].clone();
            let token = &accounts[k].token;
            let user_id = Arc::from(accounts[k].user_id.as_str());
            let member = move |ws| Member {
                ws,
                user_id,
                group,
                chat_id,
                others: args.group_size as u64 - 1,
                period: Duration::from_secs_f64(members as f64 / args.rate),
                // Spread evenly, so the members' messages do not come in waves.
                offset: Duration::from_secs_f64(k as f64 / args.rate),
            };
            async move {
                let ws = dialer.open(node, token, k).await;
                bar.inc(1);
                ws.map(|ws| tokio::spawn(talk(member(ws), phase, clock, counts)))
            }
        })
        .buffered(args.concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    let talkers = opened
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|why| anyhow::anyhow!("a member's socket did not open: {why}"))?;

    phase_tx.send_replace(Phase::Talk);
    let talk_from = since(clock);
    let talking = Duration::from_secs(args.duration_seconds);
    let mut ticker = Ticker::new(&counts);
    let started = Instant::now();
    while started.elapsed() < talking {
        tokio::time::sleep_until((started + ticker.next).into()).await;
        ticker.report(&counts, started);
    }
    phase_tx.send_replace(Phase::Quiet);
    let quiet_at = Instant::now();
    let patience = Duration::from_secs(args.drain_seconds);
    drain(&counts, &talkers, patience, &mut ticker, started).await;
    let drained_in = quiet_at.elapsed();
    let dropped = talkers.iter().filter(|t| t.is_finished()).count();
    phase_tx.send_replace(Phase::Close);
    let mut reports = Vec::with_capacity(talkers.len());
    for talker in talkers {
        reports.push(talker.await.context("a member's task failed")?);
    }

    let (sent, answered, refused) = (
        load(&counts.sent),
        load(&counts.answered),
        load(&counts.refused),
    );
    let (delivered, owed) = (load(&counts.delivered), load(&counts.owed));
    let delivering = Duration::from_nanos(load(&counts.last_delivery).saturating_sub(talk_from));
    let audit = audit(&mut reports, args.groups);
    let echoes: u64 = reports.iter().map(|r| r.echoes).sum();
    let (mut acks, mut latency) = (Latencies::default(), Latencies::default());
    for report in &mut reports {
        acks.extend(std::mem::take(&mut report.acks));
        latency.extend(std::mem::take(&mut report.latency));
    }

    println!();
    show(
        "sent",
        format!(
            "{sent} ({:.0}/s of {} asked), {answered} answered sent, {refused} refused",
            sent as f64 / talking.as_secs_f64(),
            args.rate
        ),
    );
    if let Some(refusal) = reports.iter().find_map(|r| r.first_refusal.as_deref()) {
        show("", format!("first refusal: {refusal}"));
    }
    show(
        "delivered",
        format!(
            "{delivered} of {owed} owed, in {:.2} s: {:.0}/s",
            delivering.as_secs_f64(),
            delivered as f64 / delivering.as_secs_f64().max(f64::EPSILON)
        ),
    );
    show(
        "drained",
        format!("{:.2} s after the last send", drained_in.as_secs_f64()),
    );
    show(
        "send→sent",
        format!("{}  ({} answers)", acks.summary(), acks.len()),
    );
    show(
        "send→receive",
        format!("{}  ({} messages)", latency.summary(), latency.len()),
    );
    show(
        "missing",
        format!(
            "{}, duplicates {}, own messages echoed {echoes}, unexpected {}, unreadable frames {}",
            audit.missing, audit.duplicates, audit.unexpected, audit.unreadable
        ),
    );
    show("dropped", format!("{dropped} sockets before the end"));
    for why in reports.iter().filter_map(|r| r.dropped.as_deref()).take(5) {
        show("", why);
    }

    Ok(verdict([
        ("every send answered sent", answered == sent && refused == 0),
        (
            "every member got every other member's message",
            audit.missing == 0,
        ),
        (
            "no message delivered twice to a member",
            audit.duplicates == 0,
        ),
        (
            "no member got its own or another chat's message",
            echoes == 0 && audit.unexpected == 0 && audit.unreadable == 0,
        ),
        ("no socket dropped", dropped == 0),
    ]))
}

fn load(count: &AtomicU64) -> u64 {
    count.load(Ordering::Relaxed)
}

/// Waits after the last send until every send is answered and every owed message has
/// come, or nothing has come for `patience`, or every socket is gone.
async fn drain(
    counts: &Counts,
    talkers: &[JoinHandle<Report>],
    patience: Duration,
    ticker: &mut Ticker,
    started: Instant,
) {
    let heard = || load(&counts.answered) + load(&counts.refused) + load(&counts.delivered);
    let (mut last, mut moved) = (heard(), Instant::now());
    loop {
        let settled = load(&counts.answered) + load(&counts.refused) >= load(&counts.sent)
            && load(&counts.delivered) >= load(&counts.owed);
        if settled || moved.elapsed() >= patience || talkers.iter().all(JoinHandle::is_finished) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if heard() != last {
            (last, moved) = (heard(), Instant::now());
        }
        if started.elapsed() >= ticker.next {
            ticker.report(counts, started);
        }
    }
}

/// One chat per group, started by its first member with the others; returns their ids.
async fn create_chats(
    api: &Api,
    accounts: &[Account],
    args: &MessagesArgs,
) -> anyhow::Result<Vec<Arc<str>>> {
    let bar = progress(args.groups, "chats");
    let chats: Vec<anyhow::Result<Arc<str>>> =
        futures::stream::iter(accounts.chunks(args.group_size))
            .enumerate()
            .map(|(g, group)| {
                let bar = &bar;
                async move {
                    let others: Vec<&str> = group[1..].iter().map(|a| a.user_id.as_str()).collect();
                    let mut body = json!({"member_ids": others});
                    if others.len() > 1 {
                        body["title"] = format!("Load test group {g}").into();
                    }
                    let (status, chat) = api
                        .send(
                            Method::POST,
                            "/chats",
                            Some(&group[0].token),
                            Some(&body),
                            None,
                        )
                        .await
                        .context("starting a chat")?;
                    anyhow::ensure!(
                        status == 201 || status == 200,
                        "starting a chat answered {status}: {chat}"
                    );
                    bar.inc(1);
                    chat["id"]
                        .as_str()
                        .map(Arc::from)
                        .context("the chat has no id")
                }
            })
            .buffered(args.concurrency)
            .collect()
            .await;
    bar.finish_and_clear();
    chats.into_iter().collect()
}

/// Prints what was sent and delivered in each second.
struct Ticker {
    next: Duration,
    sent: u64,
    delivered: u64,
}

impl Ticker {
    fn new(counts: &Counts) -> Self {
        Self {
            next: Duration::from_secs(1),
            sent: load(&counts.sent),
            delivered: load(&counts.delivered),
        }
    }

    fn report(&mut self, counts: &Counts, started: Instant) {
        let (sent, delivered, owed) = (
            load(&counts.sent),
            load(&counts.delivered),
            load(&counts.owed),
        );
        println!(
            "t={:>4.0}s  sent {:>7}/s  delivered {:>8}/s  on their way {:>8}",
            started.elapsed().as_secs_f64(),
            sent - self.sent,
            delivered - self.delivered,
            owed.saturating_sub(delivered)
        );
        (self.sent, self.delivered) = (sent, delivered);
        self.next += Duration::from_secs(1);
    }
}

/// What the members received, against what their groups sent.
#[derive(Debug, Default, PartialEq, Eq)]
struct Audit {
    /// (member, message) pairs owed and never received.
    missing: usize,
    /// Message frames beyond the first for one (member, message).
    duplicates: usize,
    /// Message frames of no message of the member's group (or of its own, with another
    /// member as sender).
    unexpected: usize,
    unreadable: u64,
}

fn audit(reports: &mut [Report], groups: usize) -> Audit {
    let mut sent_by_group: Vec<Vec<u128>> = vec![Vec::new(); groups];
    for report in reports.iter_mut() {
        report.sent_ids.sort_unstable();
        sent_by_group[report.group].extend(&report.sent_ids);
    }
    for sent in &mut sent_by_group {
        sent.sort_unstable();
    }
    let mut audit = Audit::default();
    for report in reports.iter_mut() {
        audit.unreadable += report.unreadable;
        let received = &mut report.received;
        received.sort_unstable();
        let all = received.len();
        received.dedup();
        audit.duplicates += all - received.len();
        let own = &report.sent_ids;
        let group = &sent_by_group[report.group];
        audit.unexpected += received
            .iter()
            .filter(|id| group.binary_search(id).is_err() || own.binary_search(id).is_ok())
            .count();
        audit.missing += group
            .iter()
            .filter(|id| own.binary_search(id).is_err() && received.binary_search(id).is_err())
            .count();
    }
    audit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(group: usize, sent: &[u128], received: &[u128]) -> Report {
        Report {
            group,
            sent_ids: sent.to_vec(),
            received: received.to_vec(),
            ..Report::default()
        }
    }

    #[test]
    fn a_complete_run_passes_the_audit() {
        let mut reports = vec![
            member(0, &[1, 2], &[3]),
            member(0, &[3], &[2, 1]),
            member(1, &[10], &[]),
            member(1, &[], &[10]),
        ];
        assert_eq!(audit(&mut reports, 2), Audit::default());
    }

    #[test]
    fn the_audit_finds_missing_duplicate_and_stray_messages() {
        let mut reports = vec![
            // Misses 3; gets its own 2, twice, and 10 from the other group.
            member(0, &[1, 2], &[2, 2, 10]),
            member(0, &[3], &[1, 2, 1]),
            member(1, &[10], &[]),
        ];
        let found = audit(&mut reports, 2);
        assert_eq!(
            found,
            Audit {
                missing: 1,
                duplicates: 2,
                unexpected: 2,
                unreadable: 0,
            }
        );
    }
}
