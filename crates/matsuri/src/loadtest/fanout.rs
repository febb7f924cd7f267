//! `matsuri loadtest fanout`: events written through the outbox and handled by three
//! consumer groups, end to end. Prints the produce rate, the lag every second, and the
//! end-to-end rate; checks that every group handled every event.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio_util::sync::CancellationToken;

use matsuri_bus::{Bus, Consumer, Event, NatsLink, Subscription, Transport};
use matsuri_core::config::DatabaseSettings;
use matsuri_core::{SharedClock, SystemClock};
use matsuri_db::Db;
use matsuri_server::Components;

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// sqlite://… or postgres://… (its tables are created there); default: a fresh SQLite
    /// file in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
    /// Events to publish.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Events per producing transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Distinct event keys, each handled in order (0: no keys).
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    /// Bus worker tasks sharing the work.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Publish every event before the workers start, to measure how fast a backlog
    /// drains (otherwise producer and workers run together).
    #[arg(long)]
    preload: bool,
    /// Carry the events over JetStream at this URL (`nats://…`) instead of the SQL log;
    /// a stream of its own is made and deleted afterwards.
    #[arg(long)]
    nats_url: Option<String>,
}

const TOPIC: &str = "bench.fanout";
const GROUPS: [&str; 3] = ["inventory", "notification", "billing"];

/// Counts what it handles and which events it has seen (by the payload's `n`), cheaply
/// enough not to weigh on what is measured.
struct Counter {
    handled: AtomicU64,
    distinct: AtomicU64,
    seen: Vec<AtomicBool>,
}

impl Counter {
    fn new(events: usize) -> Self {
        Self {
            handled: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            seen: (0..events).map(|_| AtomicBool::new(false)).collect(),
        }
    }
}

#[async_trait::async_trait]
impl Consumer for Counter {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let n = event.payload["n"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| anyhow::anyhow!("an event without its number"))?;
        let seen = self
            .seen
            .get(n)
            .ok_or_else(|| anyhow::anyhow!("event {n} was never published"))?;
        if !seen.swap(true, Ordering::Relaxed) {
            self.distinct.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<ExitCode> {
    matsuri_server::telemetry::init_tracing(&matsuri_core::config::LogSettings {
        filter: "warn".into(),
        ..Default::default()
    });
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("fanout.db").display()));
    let settings = DatabaseSettings {
        max_connections: 16,
        ..DatabaseSettings::default()
    };
    let db = Db::connect(&url, &settings).await?;
    Components::migrate(&db).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let counters: Vec<Arc<Counter>> = GROUPS
        .iter()
        .map(|_| Arc::new(Counter::new(args.events)))
        .collect();
    let subscriptions = GROUPS
        .iter()
        .zip(&counters)
        .map(|(group, counter)| Subscription::new(TOPIC, group, counter.clone()))
        .collect();
    let mut bus = Bus::new(db.clone(), clock.clone(), subscriptions);
    let link = match &args.nats_url {
        Some(url) => Some(Arc::new(
            NatsLink::connect(url, &format!("fanout_{}", std::process::id())).await?,
        )),
        None => None,
    };
    if let Some(link) = &link {
        bus = bus.with_transport(Transport::Nats(link.clone()));
    }
    println!(
        "fanout: {} events, {} per transaction, {} keys, {} workers, 3 groups, on {}{}",
        args.events,
        args.batch,
        args.keys,
        args.workers,
        url.split(':').next().unwrap_or_default(),
        if link.is_some() { " + JetStream" } else { "" }
    );

    let stop = CancellationToken::new();
    let spawn_workers = || -> Vec<_> {
        (0..args.workers.max(1))
            .map(|_| tokio::spawn(bus.clone().run(stop.clone())))
            .collect()
    };
    let mut workers = if args.preload {
        Vec::new()
    } else {
        spawn_workers()
    };
    let started = Instant::now();
    let mut producer = {
        let (db, clock) = (db.clone(), clock.clone());
        let (events, batch, keys) = (args.events, args.batch.max(1), args.keys);
        tokio::spawn(async move {
            let mut n = 0;
            while n < events {
                let mut tx = db.begin().await?;
                for _ in 0..batch.min(events - n) {
                    let key = (keys > 0).then(|| format!("key-{}", n % keys));
                    matsuri_bus::publish(
                        &mut tx,
                        clock.now_ms(),
                        TOPIC,
                        key.as_deref(),
                        &serde_json::json!({ "n": n }),
                    )
                    .await?;
                    n += 1;
                }
                tx.commit().await?;
            }
            anyhow::Ok(started.elapsed())
        })
    };

    let mut started = started;
    if args.preload {
        let took = (&mut producer).await??;
        println!(
            "preloaded {} events in {:.2} s; starting the workers",
            args.events,
            took.as_secs_f64()
        );
        started = Instant::now();
        workers = spawn_workers();
    }
    let total = (args.events * GROUPS.len()) as u64;
    let handled = || {
        counters
            .iter()
            .map(|c| c.handled.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    // Redelivered events count as deliveries but not towards the end: the run ends when
    // every group has seen every event.
    let distinct = || {
        counters
            .iter()
            .map(|c| c.distinct.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let mut produced_in = None;
    let deadline = Instant::now() + Duration::from_secs(1_800);
    // Poll often so the end is timed closely; print the lag once a second.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut next_report = Duration::from_secs(1);
    while distinct() < total && Instant::now() < deadline {
        tick.tick().await;
        if produced_in.is_none() && producer.is_finished() {
            produced_in = Some(started.elapsed());
        }
        if started.elapsed() < next_report {
            continue;
        }
        next_report += Duration::from_secs(1);
        let done = handled();
        // How far the relay has ordered the log and, on JetStream, published it (its
        // positions count from 1 in this fresh database).
        let position = |sql: &'static str, label: &'static str| {
            let db = db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(db.reader())
                    .await
                    .map_or_else(|_| String::new(), |n| format!("  {label} {n:>7}"))
            }
        };
        let mut log = position("SELECT COALESCE(MAX(seq), 0) FROM outbox", "relayed").await;
        if link.is_some() {
            log += &position(
                "SELECT COALESCE(MAX(seq), 0) FROM bus_nats_published",
                "published",
            )
            .await;
        }
        println!(
            "t={:>4.0}s  handled {:>9}  lag {:>9}{log}  ({:.0} deliveries/s so far)",
            started.elapsed().as_secs_f64(),
            done,
            total.saturating_sub(distinct()),
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    let elapsed = started.elapsed();
    stop.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    println!();
    if !args.preload {
        let produce_time = producer.await??;
        let produce_time = produced_in.map_or(produce_time, |p| p.min(produce_time));
        println!(
            "published     {} events in {:.2} s ({:.0} events/s)",
            args.events,
            produce_time.as_secs_f64(),
            args.events as f64 / produce_time.as_secs_f64()
        );
    }
    println!(
        "end to end    {:.2} s: {:.0} events/s × 3 groups ({:.0} deliveries/s)",
        elapsed.as_secs_f64(),
        args.events as f64 / elapsed.as_secs_f64(),
        handled() as f64 / elapsed.as_secs_f64()
    );
    let mut ok = true;
    for (group, counter) in GROUPS.iter().zip(&counters) {
        let distinct = counter.distinct.load(Ordering::Relaxed);
        let handled = counter.handled.load(Ordering::Relaxed);
        let complete = distinct == args.events as u64;
        ok &= complete;
        println!(
            "invariant     {group}: every event handled: {} ({distinct} distinct, {} redelivered)",
            if complete { "ok" } else { "FAILED" },
            handled.saturating_sub(distinct)
        );
    }
    if let Some(link) = link {
        link.delete_stream().await?;
    }
    db.close().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
