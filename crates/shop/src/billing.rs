//! Billing (seed 004's billing service): an invoice per paid order — each line with its
//! subtotal, the order's subtotal, consumption tax 10 % rounded down to the yen, total,
//! status `pending`. Also the staff views of invoices and of the order mails sent.

use std::collections::HashSet;

use serde::Serialize;

use matsuri_bus::{Consumer, Event, apply_all};
use matsuri_core::timefmt::rfc3339;
use matsuri_core::{SharedClock, Yen};
use matsuri_db::{Db, rows_per_statement, value_rows};

use crate::orders::{LineRow, order_line};
use crate::{OrderEvent, OrderLine, ShopError, ShopService, TAX_PERCENT};

/// The consumer group name.
pub const BILLING_GROUP: &str = "billing";

/// An invoice as the staff API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    pub order_number: String,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub status: String,
    pub lines: Vec<OrderLine>,
    pub created_at: String,
}

/// A mail the shop sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub order_number: String,
    pub sent_at: String,
}

/// The `order.paid` consumer that makes invoices.
pub struct Billing {
    db: Db,
    clock: SharedClock,
}

impl Billing {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// Makes the invoice of every paid order among `events` that has none yet, all in
    /// one transaction.
    async fn invoice(&self, events: &[&Event]) -> anyhow::Result<()> {
        let mut invoices = Vec::with_capacity(events.len());
        for event in events {
            let paid: OrderEvent = event.decode()?;
            let (subtotal, tax, total) = amounts(&paid.order.items)?;
            invoices.push(Draft {
                event_id: event.id.as_str(),
                invoice_id: matsuri_core::ids::new_uuid_v7(),
                paid,
                subtotal,
                tax,
                total,
            });
        }
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let ids: Vec<&str> = invoices.iter().map(|d| d.event_id).collect();
        let mut fresh = apply_all(&mut tx, BILLING_GROUP, &ids, now).await?;
        invoices.retain(|d| fresh.remove(d.event_id));
        let mut created = HashSet::new();
        for chunk in invoices.chunks(rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO invoices (id, order_number, user_id, subtotal, tax, total, status, created_at) \
                 VALUES {} ON CONFLICT (order_number) DO NOTHING RETURNING id",
                value_rows(self.db.dialect(), chunk.len(), 8)
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for draft in chunk {
                query = query
                    .bind(&draft.invoice_id)
                    .bind(&draft.paid.order.number)
                    .bind(&draft.paid.user_id)
                    .bind(draft.subtotal.0)
                    .bind(draft.tax.0)
                    .bind(draft.total.0)
                    .bind("pending")
                    .bind(now);
            }
            created.extend(query.fetch_all(&mut *tx).await?);
        }
        let lines: Vec<(&str, i64, &OrderLine)> = invoices
            .iter()
            .filter(|d| created.contains(&d.invoice_id))
            .flat_map(|d| {
                (0_i64..)
                    .zip(&d.paid.order.items)
                    .map(move |(i, line)| (d.invoice_id.as_str(), i, line))
            })
            .collect();
        for chunk in lines.chunks(rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO invoice_lines (invoice_id, line_no, product_id, sku, name, unit_price, quantity, line_total) \
                 VALUES {}",
                value_rows(self.db.dialect(), chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (invoice_id, line_no, line) in chunk {
                query = query
                    .bind(*invoice_id)
                    .bind(*line_no)
                    .bind(&line.product_id)
                    .bind(&line.sku)
                    .bind(&line.name)
                    .bind(line.unit_price)
                    .bind(line.quantity)
                    .bind(line.unit_price.saturating_mul(line.quantity));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::debug!(invoices = created.len(), "invoices made");
        Ok(())
    }
}

/// The invoice a paid-order event asks for, before it is written.
struct Draft<'a> {
    event_id: &'a str,
    invoice_id: String,
    paid: OrderEvent,
    subtotal: Yen,
    tax: Yen,
    total: Yen,
}

/// An order's subtotal, consumption tax and total, from its lines.
fn amounts(lines: &[OrderLine]) -> anyhow::Result<(Yen, Yen, Yen)> {
    let mut subtotal = Yen::ZERO;
    for line in lines {
        let line_total = Yen(line.unit_price)
            .times(line.quantity)
            .ok_or_else(|| anyhow::anyhow!("line total overflows"))?;
        subtotal = subtotal
            .plus(line_total)
            .ok_or_else(|| anyhow::anyhow!("subtotal overflows"))?;
    }
    let tax = subtotal
        .percent_floor(TAX_PERCENT)
        .ok_or_else(|| anyhow::anyhow!("tax overflows"))?;
    let total = subtotal
        .plus(tax)
        .ok_or_else(|| anyhow::anyhow!("total overflows"))?;
    Ok((subtotal, tax, total))
}

#[async_trait::async_trait]
impl Consumer for Billing {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.invoice(&[event]).await
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        Some(self.invoice(events).await)
    }
}

impl ShopService {
    /// Invoices, newest first, optionally of one order: `limit + 1` from before `cursor`.
    pub async fn invoices(
        &self,
        order: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Invoice)>, ShopError> {
        let mut conn = self.db.reader().acquire().await?;
        let rows: Vec<(String, String, i64, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT id, order_number, subtotal, tax, total, status, created_at FROM invoices \
             WHERE ($1 = '' OR order_number = $1) AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(order.unwrap_or_default())
        .bind(cursor.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, order_number, subtotal, tax, total, status, created_at) in rows {
            let lines: Vec<LineRow> = sqlx::query_as(
                "SELECT product_id, sku, name, unit_price, quantity, line_total FROM invoice_lines \
                 WHERE invoice_id = $1 ORDER BY line_no",
            )
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
            let lines = lines.into_iter().map(order_line).collect();
            out.push((
                id,
                Invoice {
                    order_number,
                    subtotal,
                    tax,
                    total,
                    status,
                    lines,
                    created_at: rfc3339(created_at),
                },
            ));
        }
        Ok(out)
    }

    /// Order mails sent, newest first, optionally to one address: `limit + 1` after the
    /// page ending at `cursor` (an offset).
    pub async fn sent_mails(
        &self,
        to: Option<&str>,
        offset: i64,
        limit: u32,
    ) -> Result<Vec<SentMail>, ShopError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT to_addr, subject, order_number, sent_at FROM order_mails WHERE ($1 = '' OR to_addr = $1) \
             ORDER BY sent_at DESC, order_number DESC, kind LIMIT $2 OFFSET $3",
        )
        .bind(to.map(str::to_lowercase).unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .bind(offset)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(to, subject, order_number, sent_at)| SentMail {
                to,
                subject,
                order_number,
                sent_at: rfc3339(sent_at),
            })
            .collect())
    }
}
