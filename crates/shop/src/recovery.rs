//! The recovery sweep: settles orders that a crash left `pending_payment` between the
//! charge and its recording. It asks the gateway about the order's idempotency key: a
//! charge that went through makes the order paid; otherwise the key is voided (so a late
//! charge can never succeed) and the reserved stock is given back.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_payments::ChargeOutcome;

use crate::checkout::Settlement;
use crate::{ShopError, ShopService};

const BATCH: i64 = 200;
/// Answers of finished requests are replayed for a day.
const KEEP_ANSWERS_MS: i64 = 24 * 3_600_000;
/// A claimed key with nothing created is given back after an hour.
const KEEP_ABANDONED_MS: i64 = 3_600_000;

impl ShopService {
    /// One sweep; returns how many orders it settled.
    pub async fn recover_pending_orders(&self) -> Result<usize, ShopError> {
        let now = self.clock.now_ms();
        let grace_ms = i64::try_from(self.settings.recovery_grace_seconds.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let stale: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, number, charge_key FROM orders WHERE status = 'pending_payment' AND created_at <= $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(now.saturating_sub(grace_ms))
        .bind(BATCH)
        .fetch_all(self.db.reader())
        .await?;
        let mut settled = 0;
        for (order_id, number, charge_key) in stale {
            let settlement = match self.gateway.settle(&charge_key).await {
                Ok(ChargeOutcome::Approved { charge_id }) => Settlement::Paid { charge_id },
                Ok(ChargeOutcome::Declined { reason }) => Settlement::Failed { reason },
                Err(e) => {
                    tracing::warn!(order_number = %number, error = %e, "cannot settle a pending order yet");
                    continue;
                }
            };
            let order = self.settle(&order_id, settlement, None).await?;
            tracing::info!(order_number = %number, status = order.status.as_str(), "recovered a pending order");
            settled += 1;
        }
        self.idempotency
            .prune(
                now.saturating_sub(KEEP_ANSWERS_MS),
                now.saturating_sub(KEEP_ABANDONED_MS),
            )
            .await?;
        Ok(settled)
    }

    /// Runs the sweep every `recovery_interval_seconds` until `stop`.
    pub async fn run_recovery(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_secs(self.settings.recovery_interval_seconds.max(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let span = tracing::info_span!("job.order_recovery");
            if let Err(e) = self.recover_pending_orders().instrument(span).await {
                tracing::warn!(error = %e, "order recovery sweep failed");
            }
        }
    }
}
