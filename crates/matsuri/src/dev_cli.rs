//! `matsuri dev …`: tools for development and demos. `dev marketplace` runs a simulated
//! marketplace speaking the channel protocol (`docs/marketplace.md`), with shoppers buying
//! from what it was given to list; `dev gen-activity` writes a synthetic shop's activity
//! (`recs_cli.rs`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use matsuri_inventory::simulated::SimulatedMarketplace;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Run a simulated marketplace for `POST /api/v1/admin/channels`.
    Marketplace(MarketplaceArgs),
    /// Write a synthetic shop's activity into the activity log (and as CSV).
    GenActivity(crate::recs_cli::GenArgs),
}

#[derive(Debug, Args)]
pub struct MarketplaceArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    bind: String,
    /// The bearer token it expects from matsuri.
    #[arg(long, default_value = "dev-marketplace")]
    token: String,
    /// Purchases its shoppers make per second (0 for none).
    #[arg(long, default_value_t = 2)]
    shoppers_per_second: u32,
    /// Seed of the shoppers' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn run(
    config: Option<&std::path::Path>,
    command: DevCommand,
) -> anyhow::Result<ExitCode> {
    let args = match command {
        DevCommand::Marketplace(args) => args,
        DevCommand::GenActivity(args) => return crate::recs_cli::gen_activity(config, args).await,
    };
    let market = SimulatedMarketplace::new(&args.token);
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", args.bind))?;
    let stop = CancellationToken::new();
    if args.shoppers_per_second > 0 {
        tokio::spawn(market.clone().run_shoppers(
            args.shoppers_per_second,
            args.seed,
            stop.clone(),
        ));
    }
    println!(
        "simulated marketplace on http://{} (token {:?}); add it with POST /api/v1/admin/channels",
        listener.local_addr()?,
        args.token
    );
    let shutdown = stop.clone();
    axum::serve(listener, market.router())
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
