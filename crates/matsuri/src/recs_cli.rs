//! `matsuri batch recommend` (a recommendation run now, with a progress bar on a terminal)
//! and `matsuri dev gen-activity` (a reproducible synthetic shop written straight into
//! the activity log, and as CSV for other tools).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use matsuri_core::{Clock, SystemClock};
use matsuri_recs::generate::{Generator, ShopShape};
use matsuri_recs::{Progress, RecsError};
use matsuri_server::Components;

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Days of activity to read [default: recs.days]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=365))]
    days: Option<u32>,
    #[command(flatten)]
    backends: crate::cli::BackendArgs,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Items (when --use-catalog: at most this many of the catalog's products).
    #[arg(long, default_value_t = 200)]
    items: usize,
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days the events are spread over, ending now.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Taste clusters [default: one per 100 items]
    #[arg(long, default_value_t = 0)]
    clusters: usize,
    /// Use the catalog's products as the items, so recommendations show them.
    #[arg(long)]
    use_catalog: bool,
    /// Also write the events to this CSV file (user_id,product_id,kind,at).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Do not write into the activity log (CSV only).
    #[arg(long)]
    no_log: bool,
    #[command(flatten)]
    backends: crate::cli::BackendArgs,
}

fn bar(length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub async fn recommend(
    config: Option<&std::path::Path>,
    args: RecommendArgs,
) -> anyhow::Result<ExitCode> {
    let mut settings = crate::cli::load(config, &args.backends)?;
    if let Some(days) = args.days {
        settings.recs.days = days;
    }
    matsuri_server::telemetry::init_tracing(&settings.log);
    let components = Components::build(&settings, Arc::new(SystemClock)).await?;
    let shown = bar(0);
    let on_bar = shown.clone();
    let progress: Progress = Arc::new(move |stage, done, total| {
        on_bar.set_message(stage.to_owned());
        on_bar.set_length(total);
        on_bar.set_position(done);
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        matsuri_server::shutdown_signal().await;
        stopper.cancel();
    });
    let result = components.recs.run_now("cli", Some(progress), stop).await;
    shown.finish_and_clear();
    components.db.close().await;
    match result {
        Ok(summary) => {
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(RecsError::Busy) => {
            eprintln!("another recommendation run is going; try again when it has finished");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// Events written to the log per transaction.
const CHUNK: usize = 5_000;

/// `matsuri dev gen-activity`.
pub async fn gen_activity(
    config: Option<&std::path::Path>,
    args: GenArgs,
) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::load(config, &args.backends)?;
    matsuri_server::telemetry::init_tracing(&settings.log);
    let components = Components::build(&settings, Arc::new(SystemClock)).await?;
    let items = if args.use_catalog {
        catalog_ids(&components, args.items).await?
    } else {
        Vec::new()
    };
    anyhow::ensure!(
        !args.use_catalog || items.len() >= 2,
        "--use-catalog needs at least two products in the catalog"
    );
    let shape = ShopShape {
        users: args.users,
        items: args.items,
        events: args.events,
        seed: args.seed,
        days: args.days,
        clusters: args.clusters,
        end: SystemClock.now_ms(),
    };
    let mut csv = match &args.csv {
        Some(path) => {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            writeln!(file, "user_id,product_id,kind,at")?;
            Some(file)
        }
        None => None,
    };
    let shown = bar(u64::try_from(args.events).unwrap_or(u64::MAX));
    shown.set_message("events");
    let mut generator = Generator::new(shape, items).peekable();
    while generator.peek().is_some() {
        let chunk: Vec<_> = generator.by_ref().take(CHUNK).collect();
        if let Some(file) = csv.as_mut() {
            for e in &chunk {
                writeln!(
                    file,
                    "{},{},{},{}",
                    e.user_id,
                    e.product_id.as_deref().unwrap_or_default(),
                    e.kind.as_str(),
                    e.at
                )?;
            }
        }
        if !args.no_log {
            matsuri_recs::append(&components.db, &chunk).await?;
        }
        shown.inc(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
    }
    if let Some(mut file) = csv {
        file.flush()?;
    }
    shown.finish_and_clear();
    components.db.close().await;
    println!("{} events for {} users", args.events, args.users);
    Ok(ExitCode::SUCCESS)
}

async fn catalog_ids(components: &Components, most: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    while ids.len() < most {
        let page = components
            .shop
            .products_after(cursor.as_deref(), 100)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        let more = page.len() > 100;
        ids.extend(page.into_iter().take(100).map(|p| p.id));
        if !more {
            break;
        }
    }
    ids.truncate(most);
    Ok(ids)
}
