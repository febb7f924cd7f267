//! The `matsuri` binary: parses the command line and hands over to the libraries.

mod cli;
mod dev_cli;
mod inventory_cli;
mod loadtest;
mod recs_cli;

use std::process::ExitCode;

use clap::Parser;

/// Requests, events and JSON allocate many small, short-lived values on every thread;
/// mimalloc serves them from per-thread pages where glibc's allocator showed at a fifth
/// of the samples in the fan-out benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // sqlx, lettre and reqwest all use rustls; give it one process-wide crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = cli::Cli::parse();
    match cli::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
