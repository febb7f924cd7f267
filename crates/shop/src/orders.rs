//! Reading orders: the caller's own only; anyone else's order is "not found".

use matsuri_core::ids::UserId;
use matsuri_core::timefmt::rfc3339;
use matsuri_db::Conn;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Order, OrderLine, OrderStatus, ShippingAddress, ShopError, ShopService};

/// A stored order or invoice line: product id, SKU, name, unit price, quantity, total.
pub(crate) type LineRow = (String, String, String, i64, i64, i64);

pub(crate) fn order_line(
    (product_id, sku, name, unit_price, quantity, line_total): LineRow,
) -> OrderLine {
    OrderLine {
        product_id,
        sku,
        name,
        unit_price,
        quantity,
        line_total,
    }
}

/// An order as stored, read by column name from a `SELECT` (or `RETURNING`) of
/// [`ORDER_COLUMNS`].
pub(crate) struct OrderRow {
    pub number: String,
    pub status: String,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub currency: String,
    pub ship_name: String,
    pub ship_postal_code: String,
    pub ship_address: String,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub failure_reason: Option<String>,
    pub user_id: String,
    /// Whether it was ordered from the cart (1) or from lines in the request (0).
    pub from_cart: i64,
    pub cancelled_at: Option<i64>,
    pub refunded_at: Option<i64>,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for OrderRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            number: row.try_get("number")?,
            status: row.try_get("status")?,
            subtotal: row.try_get("subtotal")?,
            tax: row.try_get("tax")?,
            total: row.try_get("total")?,
            currency: row.try_get("currency")?,
            ship_name: row.try_get("ship_name")?,
            ship_postal_code: row.try_get("ship_postal_code")?,
            ship_address: row.try_get("ship_address")?,
            created_at: row.try_get("created_at")?,
            paid_at: row.try_get("paid_at")?,
            failure_reason: row.try_get("failure_reason")?,
            user_id: row.try_get("user_id")?,
            from_cart: row.try_get("from_cart")?,
            cancelled_at: row.try_get("cancelled_at")?,
            refunded_at: row.try_get("refunded_at")?,
        })
    }
}

pub(crate) const ORDER_COLUMNS: &str = "number, status, subtotal, tax, total, currency, \
    ship_name, ship_postal_code, ship_address, created_at, paid_at, failure_reason, user_id, from_cart, \
    cancelled_at, refunded_at";

/// Loads an order with its lines on `conn` (inside a transaction, or on the reader).
pub(crate) async fn load_order(conn: &mut Conn, order_id: &str) -> Result<Order, sqlx::Error> {
    let row: OrderRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    let lines = load_lines(conn, order_id).await?;
    Ok(order_of(row, lines))
}

/// An order's lines, in the order they were placed.
pub(crate) async fn load_lines(
    conn: &mut Conn,
    order_id: &str,
) -> Result<Vec<OrderLine>, sqlx::Error> {
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT product_id, sku, name, unit_price, quantity, line_total FROM order_lines \
         WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(lines.into_iter().map(order_line).collect())
}

pub(crate) fn order_of(row: OrderRow, items: Vec<OrderLine>) -> Order {
    Order {
        number: row.number,
        status: OrderStatus::parse(&row.status),
        items,
        subtotal: row.subtotal,
        tax: row.tax,
        total: row.total,
        currency: row.currency,
        shipping_address: ShippingAddress {
            name: row.ship_name,
            postal_code: row.ship_postal_code,
            address: row.ship_address,
        },
        created_at: rfc3339(row.created_at),
        paid_at: row.paid_at.map(rfc3339),
        cancelled_at: row.cancelled_at.map(rfc3339),
        refunded_at: row.refunded_at.map(rfc3339),
        failure_reason: row.failure_reason,
    }
}

impl ShopService {
    /// The caller's order by number; another user's order is `OrderNotFound`.
    pub async fn order_of(&self, user: &UserId, number: &str) -> Result<Order, ShopError> {
        if number.len() > 32 {
            return Err(ShopError::OrderNotFound);
        }
        let mut conn = self.db.reader().acquire().await?;
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM orders WHERE number = $1 AND user_id = $2")
                .bind(number)
                .bind(user.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        let id = id.ok_or(ShopError::OrderNotFound)?;
        Ok(load_order(&mut conn, &id).await?)
    }

    /// The caller's orders, newest first, each with its id: up to `limit + 1` from before
    /// `cursor` (the last id of the previous page; any text is a position in the list).
    pub async fn orders_of(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Order)>, ShopError> {
        let mut conn = self.db.reader().acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE user_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(cursor.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            let order = load_order(&mut conn, &id).await?;
            orders.push((id, order));
        }
        Ok(orders)
    }
}
