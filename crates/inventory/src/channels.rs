//! Marketplace channels (seed 002): their connections, the job that keeps each one's
//! listing in step with our stock, and flash-sale mode's part (marketplaces get nothing).
//!
//! A channel sells units it was granted out of the allocation store, so the shop and the
//! marketplaces never sell the same unit: a grant is taken there like an order (one entry
//! keyed `grant:<adjustment id>`), then counted in `inventory_channel_stock.granted`, which
//! the sync subtracts from net stock. A pulled marketplace order moves its units from the
//! grant to the ledger's unshipped orders in one transaction. Units taken back from a
//! listing return at the next sync, once the marketplace says how many it removed.
//!
//! Each cycle of a channel (under a lease, so one node runs it at a time) pulls its new
//! orders, sends its pending adjustments again, reports its shipped orders, and then moves
//! each SKU's grant towards its share: the free units (the shop's allocatable plus every
//! grant) split evenly between the shop and each channel, less `channel_buffer`. A
//! failing channel is retried with a growing pause and shows why on `/admin/channels`;
//! checkout never waits for one.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use matsuri_core::FieldError;
use matsuri_core::timefmt::rfc3339;

use crate::error::InventoryError;
use crate::marketplace::{ConnectorError, HttpConnector};
use crate::stock::{FlashSale, Stock};

/// How long a node holds a channel's cycle before another may take it over.
const LEASE_MS: i64 = 30_000;
/// The longest pause between a failing channel's attempts.
const MAX_BACKOFF_MS: i64 = 60_000;

/// A marketplace connection as the staff API shows it (never its token).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub base_url: String,
    /// `new` until its first cycle, then `ok` or `failing`.
    pub status: String,
    pub last_error: Option<String>,
    pub last_pull_at: Option<String>,
    pub last_push_at: Option<String>,
    /// Units the channel lists, summed over its SKUs, as it last said.
    pub listed: i64,
}

/// A new marketplace connection.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewChannel {
    /// Lower-case letters, digits, `-` and `_`; the `channel` of its orders in the ledger.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Where its API lives (`http` or `https`).
    #[schema(min_length = 1, max_length = 2048)]
    pub base_url: String,
    /// The bearer token its API expects.
    #[schema(min_length = 1, max_length = 4096)]
    pub token: String,
}

/// A channel's row as the cycle needs it.
#[derive(Debug, Clone)]
pub(crate) struct ChannelRow {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub token: String,
    pub failures: i64,
    pub cursor: Option<String>,
}

pub struct Channels {
    stock: Arc<Stock>,
}

impl Channels {
    pub fn new(stock: Arc<Stock>) -> Self {
        Self { stock }
    }

    pub(crate) fn stock(&self) -> &Stock {
        &self.stock
    }

    pub(crate) fn connector(&self, row: &ChannelRow) -> Result<HttpConnector, ConnectorError> {
        HttpConnector::new(
            &row.base_url,
            &row.token,
            Duration::from_millis(self.stock.settings().channel_timeout_ms.max(1)),
        )
    }

    pub async fn list(&self) -> Result<Vec<Channel>, InventoryError> {
        let rows: Vec<ChannelListRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CHANNEL_SELECT} ORDER BY c.name"
        )))
        .fetch_all(self.stock.db().reader())
        .await?;
        Ok(rows.into_iter().map(Channel::from).collect())
    }

    async fn get(&self, id: &str) -> Result<Channel, InventoryError> {
        let row: Option<ChannelListRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CHANNEL_SELECT} WHERE c.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.stock.db().reader())
        .await?;
        row.map(Channel::from)
            .ok_or_else(|| InventoryError::UnknownChannel(id.to_owned()))
    }

    /// Adds a connection; its first cycle runs at the job's next turn.
    pub async fn create(&self, new: NewChannel) -> Result<Channel, InventoryError> {
        let errors = check(&new);
        if !errors.is_empty() {
            return Err(InventoryError::InvalidChannel(errors));
        }
        let id = matsuri_core::ids::new_uuid_v7();
        let inserted = sqlx::query(
            "INSERT INTO inventory_channels (id, name, base_url, token, status, failures, \
             next_attempt_at, lease_until, created_at) VALUES ($1, $2, $3, $4, 'new', 0, 0, 0, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(new.base_url.trim_end_matches('/'))
        .bind(&new.token)
        .bind(self.stock.now())
        .execute(self.stock.db().writer())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(InventoryError::InvalidChannel(vec![FieldError::new(
                "name",
                "a channel with this name exists",
            )]));
        }
        tracing::info!(channel = %new.name, "marketplace channel added");
        self.get(&id).await
    }

    /// Removes a connection. Its listing is taken back first when the marketplace answers
    /// (orders it placed until then are pulled); either way its grants end, and their
    /// units return to the shop at the next sync.
    pub async fn delete(&self, id: &str) -> Result<(), InventoryError> {
        let row = self
            .row(id)
            .await?
            .ok_or_else(|| InventoryError::UnknownChannel(id.to_owned()))?;
        self.wait_for_lease(id).await?;
        if let Err(e) = self.withdraw(&row).await {
            tracing::warn!(channel = %row.name, error = %e, "the channel's listing could not be taken back");
        }
        let mut tx = self.stock.db().begin().await?;
        for table in ["inventory_channel_stock", "inventory_channel_pushes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE channel_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM inventory_channels WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(channel = %row.name, "marketplace channel removed");
        Ok(())
    }

    pub(crate) async fn row(&self, id: &str) -> Result<Option<ChannelRow>, sqlx::Error> {
        let row: Option<(String, String, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, name, base_url, token, failures, cursor FROM inventory_channels WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.stock.db().reader())
        .await?;
        Ok(
            row.map(|(id, name, base_url, token, failures, cursor)| ChannelRow {
                id,
                name,
                base_url,
                token,
                failures,
                cursor,
            }),
        )
    }

    /// Turns flash-sale mode on or off. On: from then on every channel's share is 0; each
    /// one is pulled and its listing taken back, and the units that came back are synced
    /// to the shop once. Off: see `Stock::set_flash_sale`; the shares come back at the
    /// channels' next cycle.
    pub async fn set_flash_sale(&self, enabled: bool) -> Result<FlashSale, InventoryError> {
        let was = self.stock.flash_sale().await?.enabled;
        let state = self.stock.set_flash_sale(enabled).await?;
        if enabled && !was {
            for id in self.ids().await? {
                let Some(row) = self.row(&id).await? else {
                    continue;
                };
                self.wait_for_lease(&id).await?;
                let withdrawn = self.withdraw(&row).await;
                self.release(&id).await?;
                if let Err(e) = withdrawn {
                    tracing::warn!(channel = %row.name, error = %e, "flash sale: the channel's listing could not be taken back; it keeps its grant until it answers");
                }
            }
            self.stock.sync_ignoring_flash_sale().await?;
        }
        Ok(state)
    }

    /// Waits (up to the lease's length) for a cycle running on the channel to end, and
    /// takes its lease.
    async fn wait_for_lease(&self, id: &str) -> Result<(), sqlx::Error> {
        let tries = LEASE_MS / 100;
        for _ in 0..tries {
            if self.lease(id).await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(
            channel = id,
            "the channel's cycle held its lease too long; going on"
        );
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE inventory_channels SET lease_until = 0 WHERE id = $1")
            .bind(id)
            .execute(self.stock.db().writer())
            .await?;
        Ok(())
    }

    async fn ids(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM inventory_channels ORDER BY name")
            .fetch_all(self.stock.db().reader())
            .await
    }

    /// One turn of every channel that is due; how many cycles ran.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = self.stock.now();
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM inventory_channels WHERE next_attempt_at <= $1 AND lease_until <= $1 \
             ORDER BY name",
        )
        .bind(now)
        .fetch_all(self.stock.db().reader())
        .await?;
        let mut ran = 0;
        for id in due {
            if !self.lease(&id).await? {
                continue;
            }
            let Some(row) = self.row(&id).await? else {
                continue;
            };
            let span = tracing::debug_span!("job.inventory_channel", channel = %row.name);
            let outcome = self.cycle(&row).instrument(span).await;
            self.record_outcome(&row, outcome).await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Takes the channel's lease; false when another node holds it.
    async fn lease(&self, id: &str) -> Result<bool, sqlx::Error> {
        let now = self.stock.now();
        let taken = sqlx::query(
            "UPDATE inventory_channels SET lease_until = $1 WHERE id = $2 AND lease_until <= $3",
        )
        .bind(now + LEASE_MS)
        .bind(id)
        .bind(now)
        .execute(self.stock.db().writer())
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn record_outcome(
        &self,
        row: &ChannelRow,
        outcome: anyhow::Result<()>,
    ) -> Result<(), sqlx::Error> {
        let now = self.stock.now();
        let every = i64::try_from(self.stock.settings().channel_interval_ms).unwrap_or(i64::MAX);
        let query = match outcome {
            Ok(()) => sqlx::query(
                "UPDATE inventory_channels SET status = 'ok', last_error = NULL, failures = 0, \
                 next_attempt_at = $1, lease_until = 0 WHERE id = $2",
            )
            .bind(now.saturating_add(every))
            .bind(&row.id),
            Err(e) => {
                let failures = row.failures + 1;
                let pause = backoff(every, failures);
                metrics::counter!("matsuri_inventory_channel_failures_total").increment(1);
                tracing::warn!(channel = %row.name, failures, error = %e, "marketplace channel failed");
                let mut detail = e.to_string();
                detail.truncate(300);
                sqlx::query(
                    "UPDATE inventory_channels SET status = 'failing', last_error = $1, \
                     failures = $2, next_attempt_at = $3, lease_until = 0 WHERE id = $4",
                )
                .bind(detail)
                .bind(failures)
                .bind(now.saturating_add(pause))
                .bind(&row.id)
            }
        };
        query.execute(self.stock.db().writer()).await?;
        Ok(())
    }

    /// Runs every due channel every `channel_interval_ms` until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_millis(self.stock.settings().channel_interval_ms.max(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let started = std::time::Instant::now();
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => metrics::histogram!("matsuri_job_seconds", "job" => "inventory_channels")
                    .record(started.elapsed().as_secs_f64()),
                Err(e) => tracing::warn!(error = %e, "marketplace channels failed"),
            }
        }
    }
}

/// The pause before a failing channel's next attempt: the interval, doubled per failure,
/// at most a minute.
fn backoff(every: i64, failures: i64) -> i64 {
    let doublings = u32::try_from(failures.clamp(0, 16)).unwrap_or(16);
    every
        .max(1)
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS.max(every))
}

fn check(new: &NewChannel) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name_ok = (1..=64).contains(&new.name.len())
        && new
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        errors.push(FieldError::new(
            "name",
            "1 to 64 lower-case letters, digits, - or _",
        ));
    } else if new.name == "own" {
        errors.push(FieldError::new("name", "`own` is the shop itself"));
    }
    let url_ok = new.base_url.len() <= 2048
        && reqwest::Url::parse(&new.base_url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
        });
    if !url_ok {
        errors.push(FieldError::new(
            "base_url",
            "an http or https URL without credentials or query",
        ));
    }
    if new.token.is_empty()
        || new.token.len() > 4096
        || !new.token.bytes().all(|b| b.is_ascii_graphic())
    {
        errors.push(FieldError::new(
            "token",
            "1 to 4096 visible ASCII characters",
        ));
    }
    errors
}

/// A channel as the staff see it, with what it lists in all.
const CHANNEL_SELECT: &str = "SELECT c.id, c.name, c.base_url, c.status, c.last_error, \
    c.last_pull_at, c.last_push_at, CAST(COALESCE((SELECT SUM(s.listed) \
    FROM inventory_channel_stock s WHERE s.channel_id = c.id), 0) AS BIGINT) AS listed \
    FROM inventory_channels c";

/// id, name, base_url, status, last_error, last_pull_at, last_push_at, listed.
type ChannelListRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
);

impl From<ChannelListRow> for Channel {
    fn from(
        (id, name, base_url, status, last_error, last_pull_at, last_push_at, listed): ChannelListRow,
    ) -> Self {
        Self {
            id,
            name,
            base_url,
            status,
            last_error,
            last_pull_at: last_pull_at.map(rfc3339),
            last_push_at: last_push_at.map(rfc3339),
            listed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_channel_waits_longer_each_time_up_to_a_minute() {
        assert_eq!(backoff(1_000, 1), 2_000);
        assert_eq!(backoff(1_000, 3), 8_000);
        assert_eq!(backoff(1_000, 40), 60_000);
        assert_eq!(backoff(120_000, 2), 120_000);
    }

    #[test]
    fn a_connection_needs_a_plain_name_an_http_url_and_a_token() {
        let good = NewChannel {
            name: "rakuichi".into(),
            base_url: "https://market.example/api".into(),
            token: "t0ken".into(),
        };
        assert!(check(&good).is_empty());
        let bad = NewChannel {
            name: "Own Shop".into(),
            base_url: "ftp://user:pw@market.example".into(),
            token: String::new(),
        };
        let fields: Vec<String> = check(&bad).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "base_url", "token"]);
        let own = NewChannel {
            name: "own".into(),
            ..good
        };
        assert_eq!(check(&own).len(), 1);
    }
}
