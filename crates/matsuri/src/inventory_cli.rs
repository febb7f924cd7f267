//! `matsuri inventory import`: a CSV file into the stock ledger from the command line, with
//! a progress bar over its bytes (the file is checked whole, then applied whole).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use matsuri_core::SystemClock;
use matsuri_inventory::{InventoryError, Kind};
use matsuri_server::Components;

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Import a CSV file: book, sales, purchases, adjustments or shipments.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// book, sales, purchases, adjustments or shipments.
    #[arg(long)]
    kind: String,
    /// The file's idempotency key: the same key imports once.
    #[arg(long)]
    key: Option<String>,
    /// The CSV file.
    file: PathBuf,
    #[command(flatten)]
    backends: crate::cli::BackendArgs,
}

pub async fn run(
    config: Option<&std::path::Path>,
    command: InventoryCommand,
) -> anyhow::Result<ExitCode> {
    let InventoryCommand::Import(args) = command;
    let settings = crate::cli::load(config, &args.backends)?;
    matsuri_server::telemetry::init_tracing(&settings.log);
    let kind = Kind::parse(&args.kind).map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let size = std::fs::metadata(&args.file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.file.display()))?
        .len();
    let components = Components::build(&settings, Arc::new(SystemClock)).await?;
    let bar = ProgressBar::new(size.saturating_mul(2));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("importing {}", kind.as_str()));
    // Checking reads the file once and applying once more: one bar over both passes.
    let shown = bar.clone();
    let checked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress: matsuri_inventory::Progress = Arc::new(move |bytes| {
        let before = checked.fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
        let pass = if bytes < before { size } else { 0 };
        shown.set_position(pass + bytes);
    });
    let result = components
        .stock
        .import_file(kind, args.file.clone(), args.key.as_deref(), Some(progress))
        .await;
    bar.finish_and_clear();
    components.db.close().await;
    match result {
        Ok(imported) => {
            println!("{}", serde_json::to_string_pretty(&imported)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(InventoryError::InvalidImport(errors)) => {
            eprintln!("the file was refused, nothing applied:");
            for error in errors {
                eprintln!("  line {}: {}", error.line, error.message);
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
