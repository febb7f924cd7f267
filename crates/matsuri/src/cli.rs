//! The command line. Every `serve` flag can also be set in `matsuri.toml` or as a
//! `MATSURI_*` environment variable; flags win.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use matsuri_accounts::NewUser;
use matsuri_core::{Role, Settings, SystemClock};
use matsuri_server::{Application, Components, shutdown_signal, telemetry};

use crate::loadtest;

#[derive(Debug, Parser)]
#[command(
    name = "matsuri",
    version,
    about = "The backend for the moments when everybody comes at once."
)]
pub struct Cli {
    /// Settings file (default: ./matsuri.toml, skipped when missing).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process: API, workers, scheduled jobs.
    Serve(ServeArgs),
    /// Run only the event consumers and scheduled jobs (no HTTP).
    Worker(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(BackendArgs),
    /// Inspect, retry and delete dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a batch job now instead of at its scheduled time.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Import files into the stock ledger.
    #[command(subcommand)]
    Inventory(crate::inventory_cli::InventoryCommand),
    /// Tools for development and demos.
    #[command(subcommand)]
    Dev(crate::dev_cli::DevCommand),
    /// Drive a running server with many concurrent clients and check its invariants.
    #[command(subcommand)]
    Loadtest(loadtest::Scenario),
}

/// Flags naming the backends; each is also `MATSURI_<NAME>` and a key in `matsuri.toml`.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub(crate) struct BackendArgs {
    /// Data directory for the SQLite file, blobs and mail [env: MATSURI_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [env: MATSURI_DATABASE_URL] [default: sqlite://<data-dir>/matsuri.db]
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
struct ServeArgs {
    /// Listen address [env: MATSURI_BIND] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    backends: BackendArgs,
    /// memory:// or redis://… [env: MATSURI_COORD_URL] [default: memory://]
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    coord_url: Option<String>,
    /// db or nats://… [env: MATSURI_BUS_URL] [default: db]
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    bus_url: Option<String>,
    /// file://… or s3://… [env: MATSURI_BLOB_URL] [default: file://<data-dir>/blobs]
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    blob_url: Option<String>,
    /// file://… (.eml files) or smtp://host:port [env: MATSURI_MAIL_URL] [default: file://<data-dir>/mail]
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    mail_url: Option<String>,
    /// Seed a demo catalog and users [env: MATSURI_DEMO]
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    demo: bool,
    /// Do not run event consumers and scheduled jobs in this process.
    #[arg(long)]
    #[serde(skip)]
    no_workers: bool,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// customer, staff or streamer.
        #[arg(long, default_value = "customer")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        backends: BackendArgs,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this consumer group's.
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        backends: BackendArgs,
    },
    /// Show one dead letter with its payload.
    Show {
        id: String,
        #[command(flatten)]
        backends: BackendArgs,
    },
    /// Send a dead letter back to its group's queue.
    Retry {
        id: String,
        #[command(flatten)]
        backends: BackendArgs,
    },
    /// Delete a dead letter.
    Delete {
        id: String,
        #[command(flatten)]
        backends: BackendArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BatchCommand {
    /// Train a new live-comment spam model from the shipped corpus and the moderators'
    /// review decisions; every node takes it up within `live.model_reload_seconds`.
    TrainSpam(BackendArgs),
    /// Compute every user's recommendations and every product's related items now, with
    /// the offline evaluation; the result is served as soon as it is complete.
    Recommend(crate::recs_cli::RecommendArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the resolved configuration, secrets redacted.
    Print(ServeArgs),
}

pub(crate) fn load(
    config: Option<&std::path::Path>,
    flags: impl Serialize,
) -> anyhow::Result<Settings> {
    Settings::load(config, flags).map_err(|e| anyhow::anyhow!("reading the configuration: {e}"))
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => {
            let mut settings = load(config, &args)?;
            if args.no_workers {
                settings.workers = false;
            }
            telemetry::init_tracing(&settings.log);
            let app = Application::build(settings, Arc::new(SystemClock)).await?;
            tracing::info!(address = %app.local_addr()?, "matsuri is listening");
            app.run_until_stopped(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let settings = load(config, &args)?;
            telemetry::init_tracing(&settings.log);
            let components = Components::build(&settings, Arc::new(SystemClock)).await?;
            let stop = tokio_util::sync::CancellationToken::new();
            let workers = components.spawn_workers(stop.clone());
            tracing::info!("matsuri worker is running");
            shutdown_signal().await;
            tracing::info!("stopping: workers finish their current job");
            stop.cancel();
            for worker in workers {
                let _ = worker.await;
            }
            components.db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq(command) => dlq(config, command).await,
        Command::Migrate(args) => {
            let settings = load(config, &args)?;
            telemetry::init_tracing(&settings.log);
            let db = matsuri_db::Db::connect(&settings.database_url(), &settings.database).await?;
            Components::migrate(&db).await?;
            db.close().await;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Users(UsersCommand::Create {
            email,
            password,
            role,
            name,
            backends,
        }) => {
            let settings = load(config, &backends)?;
            telemetry::init_tracing(&settings.log);
            let role = Role::parse(&role).context("--role must be customer, staff or streamer")?;
            let name = if name.trim().is_empty() {
                email.split('@').next().unwrap_or_default().to_owned()
            } else {
                name
            };
            let new = NewUser::parse(&email, &password, &name)
                .map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
            let components = Components::build(&settings, Arc::new(SystemClock)).await?;
            let user = components
                .accounts
                .create(new, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            components.db.close().await;
            println!(
                "created {} ({}) with id {}",
                user.email,
                role.as_str(),
                user.id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Print(args)) => {
            let mut settings = load(config, &args)?;
            if args.no_workers {
                settings.workers = false;
            }
            print!("{}", settings.redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Batch(BatchCommand::TrainSpam(backends)) => {
            let settings = load(config, &backends)?;
            telemetry::init_tracing(&settings.log);
            let components = Components::build(&settings, Arc::new(SystemClock)).await?;
            let report = components.live.train_now().await?;
            components.db.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Batch(BatchCommand::Recommend(args)) => {
            crate::recs_cli::recommend(config, args).await
        }
        Command::Inventory(command) => crate::inventory_cli::run(config, command).await,
        Command::Dev(command) => crate::dev_cli::run(config, command).await,
        Command::Loadtest(scenario) => loadtest::run(scenario).await,
    }
}

async fn dlq(config: Option<&std::path::Path>, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let backends = match &command {
        DlqCommand::List { backends, .. }
        | DlqCommand::Show { backends, .. }
        | DlqCommand::Retry { backends, .. }
        | DlqCommand::Delete { backends, .. } => backends.clone(),
    };
    let settings = load(config, &backends)?;
    let components = Components::build(&settings, Arc::new(SystemClock)).await?;
    let admin = &components.bus_admin;
    let found = match command {
        DlqCommand::List { group, limit, .. } => {
            let letters = admin
                .dead_letters(group.as_deref(), None, limit.clamp(1, 10_000))
                .await?;
            if letters.is_empty() {
                println!("no dead letters");
            }
            for d in letters.iter().take(limit as usize) {
                println!(
                    "{}  {:<14} {:<14} attempts {}  {}  {}",
                    d.id, d.group, d.topic, d.attempts, d.dead_at, d.last_error
                );
            }
            true
        }
        DlqCommand::Show { id, .. } => match admin.dead_letter(&id).await? {
            Some(d) => {
                println!("{}", serde_json::to_string_pretty(&d)?);
                true
            }
            None => false,
        },
        DlqCommand::Retry { id, .. } => {
            let done = admin.retry(&id).await?;
            if done {
                println!("{id} is queued again");
            }
            done
        }
        DlqCommand::Delete { id, .. } => {
            let done = admin.delete(&id).await?;
            if done {
                println!("{id} deleted");
            }
            done
        }
    };
    components.db.close().await;
    if found {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no such dead letter");
        Ok(ExitCode::from(2))
    }
}
