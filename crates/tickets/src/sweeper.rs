//! The sweeper (seed 001 §4 "失効ワーカー"): releases the seats of holds that ended
//! unpaid, settles card payments a crash left charging (asking the gateway about the
//! charge's idempotency key), and forgets old access tokens.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_payments::ChargeOutcome;

use crate::holds::{RESERVATION_COLUMNS, ReservationRow, end_holds};
use crate::payment::KeyOfCharge;
use crate::{SeatStatus, TicketError, TicketService};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired_holds: u64,
    pub released_seats: u64,
    pub settled_charges: u64,
}

/// Access tokens are kept this long after they expire, for the record.
const ACCESS_TOKEN_RETENTION_MS: i64 = 24 * 3_600 * 1_000;

impl TicketService {
    /// One sweep: settle stale charges, then expire ended holds and release their seats.
    pub async fn sweep(&self) -> Result<Swept, TicketError> {
        let settled_charges = self.settle_stale_charges().await?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let expired: Vec<(String, Option<String>)> = sqlx::query_as(
            "UPDATE reservations SET status = 'expired', updated_at = $1 \
             WHERE status = 'held' AND charging_since IS NULL AND expires_at <= $1 \
             RETURNING id, access_token",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let released_seats = end_holds(&mut tx, &expired, now).await?;
        sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
            .bind(now - ACCESS_TOKEN_RETENTION_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let released = released_seats.len() as u64;
        self.note_seats(released_seats, SeatStatus::Available);
        let swept = Swept {
            expired_holds: expired.len() as u64,
            released_seats: released,
            settled_charges,
        };
        if swept != Swept::default() {
            metrics::counter!("matsuri_expired_holds_total").increment(swept.expired_holds);
            tracing::info!(
                expired_holds = swept.expired_holds,
                released_seats = released,
                settled_charges,
                "swept holds"
            );
        }
        Ok(swept)
    }

    /// Card payments still charging a grace period after they started: the request
    /// that started them is gone. Ask the gateway (which voids a charge it never made),
    /// then confirm or end the hold's charge.
    async fn settle_stale_charges(&self) -> Result<u64, TicketError> {
        let cutoff = self.clock.now_ms() - self.settings.charge_grace_seconds.max(1) * 1000;
        let stale = sqlx::query_as::<_, ReservationRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations \
             WHERE status = 'held' AND charging_since IS NOT NULL AND charging_since <= $1 LIMIT 100"
        )))
        .bind(cutoff)
        .fetch_all(self.db.reader())
        .await?;
        let mut settled = 0;
        for row in stale {
            let Some(charge_key) = row.charge_key.clone() else {
                continue;
            };
            let outcome = self
                .gateway
                .settle(&charge_key)
                .await
                .map_err(|e| TicketError::Internal(e.into()))?;
            match outcome {
                ChargeOutcome::Approved { charge_id } => {
                    if self
                        .finish_card_payment(&row, &charge_key, &charge_id)
                        .await
                        .is_ok()
                    {
                        self.after_purchase(&row).await;
                    }
                }
                ChargeOutcome::Declined { .. } => {
                    self.end_charge(&row, &charge_key, KeyOfCharge::Released)
                        .await?;
                }
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// Sweeps every `sweep_interval` until stopped.
    pub async fn run_sweeper(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(
            self.settings.sweep_interval_seconds.max(1),
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self
                .sweep()
                .instrument(tracing::info_span!("hold_sweep"))
                .await
            {
                tracing::warn!(error = %e, "the hold sweep failed");
            }
        }
    }
}
