//! Order mails (seed 000 §1 step 7): one to the customer, one to the shop, sent after the
//! payment commits, from the `order.paid` event. Each mail sent is recorded, so a
//! redelivered event sends nothing twice. A batch of events is checked in one read and
//! recorded in one write.

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use matsuri_bus::{Consumer, Event};
use matsuri_core::SharedClock;
use matsuri_db::{Db, parameter_list, rows_per_statement, value_rows};
use matsuri_mail::{OutgoingMail, SharedMailer};

use crate::{Order, OrderEvent};

/// The consumer group name.
pub const NOTIFICATION_GROUP: &str = "notification";

/// Where to reach a customer.
#[derive(Debug, Clone)]
pub struct Contact {
    pub email: String,
    pub name: String,
}

/// Looks customers up; the accounts crate answers it.
#[async_trait::async_trait]
pub trait Customers: Send + Sync + 'static {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<Contact>>;
}

/// The `order.paid` consumer that mails the customer and the shop.
pub struct OrderMailer {
    db: Db,
    clock: SharedClock,
    mailer: SharedMailer,
    customers: Arc<dyn Customers>,
    shop_address: String,
    /// How long one call may go on starting new mails: half the handler deadline, so that
    /// a send started just before it still ends, and is recorded, within the deadline.
    budget: Duration,
}

/// One mail of an order: `kind` is `customer` or `shop`.
struct OrderMail {
    number: String,
    kind: &'static str,
    mail: OutgoingMail,
}

impl OrderMailer {
    /// `deadline` is the handler deadline of the notification group.
    pub fn new(
        db: Db,
        clock: SharedClock,
        mailer: SharedMailer,
        customers: Arc<dyn Customers>,
        shop_address: String,
        deadline: Duration,
    ) -> Self {
        Self {
            db,
            clock,
            mailer,
            customers,
            shop_address,
            budget: deadline / 2,
        }
    }

    /// Sends the mails of `events` that were not sent before, and records every mail it
    /// sent, also when a later one fails: handling the events again sends none twice.
    async fn send_all(&self, events: &[&Event]) -> anyhow::Result<()> {
        let started = tokio::time::Instant::now();
        let mails = self.mails_of(events).await?;
        let before = self.sent_before(&mails).await?;
        let mut sent = Vec::with_capacity(mails.len());
        let mut failure = None;
        for mail in &mails {
            if before.contains(&(mail.number.clone(), mail.kind.to_owned())) {
                continue;
            }
            if started.elapsed() > self.budget {
                failure = Some(anyhow::anyhow!(
                    "sending took longer than its budget of {:?}",
                    self.budget
                ));
                break;
            }
            if let Err(e) = self.mailer.send(&mail.mail).await {
                failure = Some(e);
                break;
            }
            sent.push(mail);
        }
        self.record(&sent).await?;
        failure.map_or(Ok(()), Err)
    }

    /// The mails the orders of `events` call for, each order once.
    async fn mails_of(&self, events: &[&Event]) -> anyhow::Result<Vec<OrderMail>> {
        let mut mails = Vec::with_capacity(2 * events.len());
        let mut orders = HashSet::new();
        for event in events {
            let paid: OrderEvent = event.decode()?;
            let order = &paid.order;
            if !orders.insert(order.number.clone()) {
                continue;
            }
            match self.customers.contact(&paid.user_id).await? {
                Some(contact) => mails.push(OrderMail {
                    number: order.number.clone(),
                    kind: "customer",
                    mail: OutgoingMail {
                        to: contact.email,
                        subject: format!("ご注文ありがとうございます（注文番号 {}）", order.number),
                        body: format!(
                            "{} 様\n\nご注文を承りました。\n\n{}",
                            contact.name,
                            summary(order)
                        ),
                    },
                }),
                None => {
                    tracing::warn!(order_number = %order.number, "the customer of a paid order no longer exists")
                }
            }
            mails.push(OrderMail {
                number: order.number.clone(),
                kind: "shop",
                mail: OutgoingMail {
                    to: self.shop_address.clone(),
                    subject: format!("新しい注文 {}（¥{}）", order.number, order.total),
                    body: format!("支払い済みの注文が入りました。\n\n{}", summary(order)),
                },
            });
        }
        Ok(mails)
    }

    /// The (order number, kind) of each of `mails` that was sent before.
    async fn sent_before(&self, mails: &[OrderMail]) -> anyhow::Result<HashSet<(String, String)>> {
        let mut numbers: Vec<&str> = mails.iter().map(|m| m.number.as_str()).collect();
        numbers.dedup();
        let mut sent = HashSet::new();
        for chunk in numbers.chunks(rows_per_statement(1)) {
            let sql = format!(
                "SELECT order_number, kind FROM order_mails WHERE order_number IN ({})",
                parameter_list(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for number in chunk {
                query = query.bind(*number);
            }
            sent.extend(query.fetch_all(self.db.reader()).await?);
        }
        Ok(sent)
    }

    /// Records mails as sent, a few hundred per statement.
    async fn record(&self, sent: &[&OrderMail]) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        for chunk in sent.chunks(rows_per_statement(5)) {
            let sql = format!(
                "INSERT INTO order_mails (order_number, kind, to_addr, subject, sent_at) VALUES {} \
                 ON CONFLICT (order_number, kind) DO NOTHING",
                value_rows(self.db.dialect(), chunk.len(), 5)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for mail in chunk {
                query = query
                    .bind(&mail.number)
                    .bind(mail.kind)
                    .bind(&mail.mail.to)
                    .bind(&mail.mail.subject)
                    .bind(now);
            }
            query.execute(self.db.writer()).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for OrderMailer {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.send_all(&[event]).await
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        Some(self.send_all(events).await)
    }
}

fn summary(order: &Order) -> String {
    let mut text = format!("注文番号: {}\n\n", order.number);
    for line in &order.items {
        let _ = writeln!(
            text,
            "- {} ({}) ¥{} × {} = ¥{}",
            line.name, line.sku, line.unit_price, line.quantity, line.line_total
        );
    }
    let ship = &order.shipping_address;
    let _ = write!(
        text,
        "\n小計: ¥{}\n消費税 (10%): ¥{}\n合計: ¥{}\n\nお届け先: {} 〒{} {}\n",
        order.subtotal, order.tax, order.total, ship.name, ship.postal_code, ship.address
    );
    text
}
