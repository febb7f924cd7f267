//! Composes matsuri: picks each port's backend from the settings, builds the domain
//! services, mounts their routes behind the shared middleware, and runs the HTTP server
//! and the background workers until told to stop.

mod bootstrap;
mod components;
mod contract;
mod http;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use matsuri_core::{Settings, SharedClock};

pub use bootstrap::seed_demo;
pub use components::Components;

/// A built server, bound to its address, not yet serving.
pub struct Application {
    listener: TcpListener,
    components: Components,
    settings: Settings,
}

impl Application {
    /// Connects every backend, applies migrations, creates the staff user from the
    /// settings (and the demo data with `demo`), and binds the listener.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        if telemetry::metrics_handle().is_none() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let components = Components::build(&settings, clock).await?;
        components.bootstrap(&settings).await?;
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        Ok(Self {
            listener,
            components,
            settings,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Serves until `shutdown` completes, then stops accepting, drains in-flight requests
    /// (up to the configured grace) and lets the workers finish their current job.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut workers = if self.settings.workers {
            self.components.spawn_workers(stop.clone())
        } else {
            Vec::new()
        };
        workers.extend(self.components.spawn_serving(&stop));
        let router = http::router(
            &self.components,
            Duration::from_secs(self.settings.http.request_timeout_seconds.max(1)),
        )?;
        let grace = Duration::from_secs(self.settings.http.shutdown_grace_seconds);
        let signal = stop.clone();
        let components = self.components.clone();
        let server = axum::serve(self.listener, router).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, draining requests");
            components.draining();
            signal.cancel();
        });
        let served = tokio::select! {
            result = server => result.context("serving HTTP"),
            () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                Ok(())
            }
        };
        stop.cancel();
        for worker in workers {
            if tokio::time::timeout(grace, worker).await.is_err() {
                tracing::warn!("a worker did not stop within the grace period");
            }
        }
        self.components.db.close().await;
        served
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
