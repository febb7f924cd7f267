//! Order mails (seed 000 §1 step 7): one to the customer, one to the shop, sent after the
//! payment commits, from the `order.paid` event. Each mail sent is recorded, so a
//! redelivered event sends nothing twice.

use std::fmt::Write;
use std::sync::Arc;

use matsuri_bus::{Consumer, Event};
use matsuri_core::SharedClock;
use matsuri_db::Db;
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
}

impl OrderMailer {
    pub fn new(
        db: Db,
        clock: SharedClock,
        mailer: SharedMailer,
        customers: Arc<dyn Customers>,
        shop_address: String,
    ) -> Self {
        Self {
            db,
            clock,
            mailer,
            customers,
            shop_address,
        }
    }

    async fn send_once(&self, number: &str, kind: &str, mail: OutgoingMail) -> anyhow::Result<()> {
        let sent: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM order_mails WHERE order_number = $1 AND kind = $2")
                .bind(number)
                .bind(kind)
                .fetch_optional(self.db.reader())
                .await?;
        if sent.is_some() {
            return Ok(());
        }
        self.mailer.send(&mail).await?;
        sqlx::query(
            "INSERT INTO order_mails (order_number, kind, to_addr, subject, sent_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (order_number, kind) DO NOTHING",
        )
        .bind(number)
        .bind(kind)
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for OrderMailer {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let paid: OrderEvent = event.decode()?;
        let order = &paid.order;
        match self.customers.contact(&paid.user_id).await? {
            Some(contact) => {
                let mail = OutgoingMail {
                    to: contact.email,
                    subject: format!("ご注文ありがとうございます（注文番号 {}）", order.number),
                    body: format!(
                        "{} 様\n\nご注文を承りました。\n\n{}",
                        contact.name,
                        summary(order)
                    ),
                };
                self.send_once(&order.number, "customer", mail).await?;
            }
            None => {
                tracing::warn!(order_number = %order.number, "the customer of a paid order no longer exists")
            }
        }
        let mail = OutgoingMail {
            to: self.shop_address.clone(),
            subject: format!("新しい注文 {}（¥{}）", order.number, order.total),
            body: format!("支払い済みの注文が入りました。\n\n{}", summary(order)),
        };
        self.send_once(&order.number, "shop", mail).await
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
