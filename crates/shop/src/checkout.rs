//! `POST /orders`: reserve, charge, settle (architecture §4 "shop", principle 5).

use std::collections::HashSet;

use tracing::Instrument;

use matsuri_core::error::StoredResponse;
use matsuri_core::ids::{UserId, parse_uuid};
use matsuri_core::timefmt::rfc3339;
use matsuri_core::{ApiError, CURRENCY, FieldError, Yen};
use matsuri_db::{IdempotencyStore, KeyLink, Param, Statements, parameter_list};
use matsuri_payments::{ChargeOutcome, ChargeRequest};

use crate::allocator::{Refusal, Taken};
use crate::numbers::OrderNumbers;
use crate::orders::{ORDER_COLUMNS, OrderRow, load_lines, load_order, order_of};
use crate::{
    Order, OrderEvent, OrderLine, OrderStatus, ShippingAddress, ShopError, ShopService,
    TAX_PERCENT, topics,
};

/// A checked checkout request.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    shipping: ShippingAddress,
    card_token: String,
    /// `None`: order the caller's cart.
    items: Option<Vec<(String, i64)>>,
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) -> String {
    matsuri_core::text::line(field, value, max)
        .map_err(|e| errors.push(e))
        .unwrap_or_default()
}

impl CheckoutRequest {
    /// Checks every field; all broken rules are reported at once. An item whose product id
    /// is not an id at all is reported as an unknown product.
    pub fn parse(
        shipping: &ShippingAddress,
        method: &str,
        card_token: Option<&str>,
        items: Option<&[(String, i64)]>,
        max_quantity: i64,
        max_lines: usize,
    ) -> Result<Self, ShopError> {
        let mut errors = Vec::new();
        let shipping = ShippingAddress {
            name: check_text(&mut errors, "shipping_address.name", &shipping.name, 100),
            postal_code: check_text(
                &mut errors,
                "shipping_address.postal_code",
                &shipping.postal_code,
                16,
            ),
            address: check_text(
                &mut errors,
                "shipping_address.address",
                &shipping.address,
                300,
            ),
        };
        if method != "card" {
            errors.push(FieldError::new("payment.method", "must be \"card\""));
        }
        let card_token = check_text(
            &mut errors,
            "payment.card_token",
            card_token.unwrap_or_default(),
            128,
        );
        let items = match items {
            None => None,
            Some(list) => {
                if list.is_empty() || list.len() > max_lines {
                    errors.push(FieldError::new(
                        "items",
                        format!("must hold 1 to {max_lines} lines"),
                    ));
                }
                let mut seen = HashSet::new();
                let mut lines = Vec::with_capacity(list.len());
                for (i, (product_id, quantity)) in list.iter().enumerate() {
                    if !(1..=max_quantity).contains(quantity) {
                        errors.push(FieldError::new(
                            format!("items[{i}].quantity"),
                            format!("must be between 1 and {max_quantity}"),
                        ));
                    }
                    let Some(id) = parse_uuid(product_id) else {
                        return Err(ShopError::ProductNotFound(product_id.clone()));
                    };
                    if !seen.insert(id.clone()) {
                        errors.push(FieldError::new(
                            format!("items[{i}].product_id"),
                            "appears more than once; order it once with the total quantity",
                        ));
                    }
                    lines.push((id, *quantity));
                }
                Some(lines)
            }
        };
        if !errors.is_empty() {
            return Err(ShopError::Invalid(errors));
        }
        Ok(Self {
            shipping,
            card_token,
            items,
        })
    }
}

/// How a pending order ends.
#[derive(Debug, Clone)]
pub(crate) enum Settlement {
    Paid { charge_id: String },
    Failed { reason: String },
}

const GATEWAY_ERROR_REASON: &str = "gateway_error";

struct Reserved {
    order_id: String,
    number: String,
    total: i64,
    charge_key: String,
    known: Known,
}

/// What the process that reserved an order knows of it, so settling it need not read it
/// back: its lines.
pub(crate) struct Known {
    lines: Vec<OrderLine>,
}

/// An order's lines, resolved by [`ShopService::precheck`], with their units taken from
/// the stock for the order to be written; given back if the request ends before.
#[derive(Debug)]
pub struct CheckedLines {
    lines: Vec<(String, i64)>,
    taken: Taken,
}

impl CheckedLines {
    /// Gives the units back before the request is answered, when it writes no order: an
    /// earlier request with its `Idempotency-Key` answered it.
    pub async fn give_back(self) {
        self.taken.give_back().await;
    }
}

impl ShopService {
    /// Places an order for `user` and pays for it. `checked` are the lines a
    /// [`Self::precheck`] of this request found, so they are not looked up again.
    pub async fn checkout(
        &self,
        user: &UserId,
        request: CheckoutRequest,
        checked: Option<CheckedLines>,
        key: Option<KeyLink<'_>>,
    ) -> Result<Order, ShopError> {
        let span =
            tracing::info_span!("checkout", user_id = %user, order_number = tracing::field::Empty);
        let result = self
            .checkout_inner(user, request, checked, key)
            .instrument(span)
            .await;
        count_outcome(result.as_ref().err());
        result
    }

    /// Refuses, without writing anything, a checkout that cannot succeed right now: an
    /// empty cart, an unknown product, or stock that other requests have already taken.
    /// Passing takes the units for the order the checkout then writes.
    pub async fn precheck(
        &self,
        user: &UserId,
        request: &CheckoutRequest,
    ) -> Result<CheckedLines, ShopError> {
        let result = self.check_lines(user, request).await;
        if let Err(e) = &result {
            count_outcome(Some(e));
        }
        result
    }

    async fn check_lines(
        &self,
        user: &UserId,
        request: &CheckoutRequest,
    ) -> Result<CheckedLines, ShopError> {
        let lines = self.lines_of(user, request).await?;
        let taken = self.take_stock(&lines).await?;
        Ok(CheckedLines { lines, taken })
    }

    async fn lines_of(
        &self,
        user: &UserId,
        request: &CheckoutRequest,
    ) -> Result<Vec<(String, i64)>, ShopError> {
        let mut lines = match &request.items {
            Some(items) => items.clone(),
            None => self.cart_lines(user).await?,
        };
        if lines.is_empty() {
            return Err(ShopError::CartEmpty);
        }
        // Lines in product order: an order's lines read alike however they were sent.
        lines.sort();
        Ok(lines)
    }

    async fn checkout_inner(
        &self,
        user: &UserId,
        request: CheckoutRequest,
        checked: Option<CheckedLines>,
        key: Option<KeyLink<'_>>,
    ) -> Result<Order, ShopError> {
        let from_cart = request.items.is_none();
        let CheckedLines { lines, taken } = match checked {
            Some(checked) => checked,
            None => self.check_lines(user, &request).await?,
        };
        let reserved = self
            .reserve(user, &lines, taken, &request.shipping, from_cart, key)
            .await?;
        tracing::Span::current().record("order_number", reserved.number.as_str());

        let charge = self
            .gateway
            .charge(&ChargeRequest {
                idempotency_key: &reserved.charge_key,
                amount: Yen(reserved.total),
                card_token: &request.card_token,
            })
            .await;
        let settlement = match charge {
            Ok(ChargeOutcome::Approved { charge_id }) => Settlement::Paid { charge_id },
            Ok(ChargeOutcome::Declined { reason }) => Settlement::Failed { reason },
            Err(e) => {
                tracing::warn!(error = %e, "payment gateway failed");
                Settlement::Failed {
                    reason: GATEWAY_ERROR_REASON.to_owned(),
                }
            }
        };
        let order = self
            .settle(&reserved.order_id, settlement, Some(reserved.known))
            .await?;
        order_result(order)
    }

    async fn cart_lines(&self, user: &UserId) -> Result<Vec<(String, i64)>, ShopError> {
        Ok(
            sqlx::query_as("SELECT product_id, quantity FROM cart_items WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    /// Takes every line's units for a new order, all or none.
    async fn take_stock(&self, lines: &[(String, i64)]) -> Result<Taken, ShopError> {
        let order_id = matsuri_core::ids::new_uuid_v7();
        match self.allocator.take(&order_id, lines).await {
            Ok(()) => Ok(Taken::new(self.allocator.clone(), order_id)),
            Err(Refusal::Short {
                product_id,
                available,
            }) => {
                let requested = lines
                    .iter()
                    .find(|(id, _)| *id == product_id)
                    .map_or(0, |(_, quantity)| *quantity);
                Err(ShopError::OutOfStock {
                    product_id,
                    available: available.max(0),
                    requested,
                })
            }
            Err(Refusal::Unknown(product_id)) => Err(ShopError::ProductNotFound(product_id)),
            Err(Refusal::Failed(e)) => Err(ShopError::Internal(e)),
        }
    }

    /// Each line's product as it is sold now: sku, name and price.
    async fn priced(
        &self,
        lines: &[(String, i64)],
    ) -> Result<Vec<(String, String, i64)>, ShopError> {
        let sql = format!(
            "SELECT id, sku, name, price FROM products WHERE id IN ({})",
            parameter_list(1, lines.len())
        );
        let mut query =
            sqlx::query_as::<_, (String, String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for (product_id, _) in lines {
            query = query.bind(product_id);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        lines
            .iter()
            .map(|(product_id, _)| {
                rows.iter()
                    .find(|(id, ..)| id == product_id)
                    .map(|(_, sku, name, price)| (sku.clone(), name.clone(), *price))
                    .ok_or_else(|| ShopError::ProductNotFound(product_id.clone()))
            })
            .collect()
    }

    /// Transaction 1, with every line's stock taken: the order and its lines,
    /// `order.placed`.
    async fn reserve(
        &self,
        user: &UserId,
        lines: &[(String, i64)],
        taken: Taken,
        shipping: &ShippingAddress,
        from_cart: bool,
        key: Option<KeyLink<'_>>,
    ) -> Result<Reserved, ShopError> {
        let priced = self.priced(lines).await?;
        let now = self.clock.now_ms();
        let (day, first) = self.numbers.prepare_day(&self.db, now).await?;
        let mut order_lines = Vec::with_capacity(lines.len());
        let mut subtotal = Yen::ZERO;
        for ((product_id, quantity), (sku, name, price)) in lines.iter().zip(priced) {
            let line_total = Yen(price).times(*quantity).ok_or_else(overflow)?;
            subtotal = subtotal.plus(line_total).ok_or_else(overflow)?;
            order_lines.push(OrderLine {
                product_id: product_id.clone(),
                sku,
                name,
                unit_price: price,
                quantity: *quantity,
                line_total: line_total.0,
            });
        }
        let tax = subtotal.percent_floor(TAX_PERCENT).ok_or_else(overflow)?;
        let total = subtotal.plus(tax).ok_or_else(overflow)?;
        let mut tx = self.db.begin().await?;
        let number = OrderNumbers::next(&self.db, &mut tx, &day, first).await?;
        let order_id = taken.order_id().to_owned();
        let charge_key = format!("order-{order_id}");
        // The rest needs nothing back: it goes to the database in one request.
        let mut write = Statements::new();
        write.add(
            "INSERT INTO orders (id, number, user_id, status, subtotal, tax, total, currency, \
             ship_name, ship_postal_code, ship_address, from_cart, charge_key, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending_payment', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
            vec![
                Param::from(&order_id),
                Param::from(&number),
                Param::from(user.as_str()),
                Param::from(subtotal.0),
                Param::from(tax.0),
                Param::from(total.0),
                Param::from(CURRENCY),
                Param::from(&shipping.name),
                Param::from(&shipping.postal_code),
                Param::from(&shipping.address),
                Param::from(i64::from(from_cart)),
                Param::from(&charge_key),
                Param::from(now),
            ],
        );
        for (i, line) in order_lines.iter().enumerate() {
            write.add(
                "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, quantity, line_total) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                vec![
                    Param::from(&order_id),
                    Param::from(i64::try_from(i).unwrap_or(i64::MAX)),
                    Param::from(&line.product_id),
                    Param::from(&line.sku),
                    Param::from(&line.name),
                    Param::from(line.unit_price),
                    Param::from(line.quantity),
                    Param::from(line.line_total),
                ],
            );
        }
        if let Some(key) = key {
            key.link_with(&mut write, &order_id);
        }
        // The order as just written, without reading it back on the writer.
        let order = Order {
            number: number.clone(),
            status: OrderStatus::PendingPayment,
            items: order_lines.clone(),
            subtotal: subtotal.0,
            tax: tax.0,
            total: total.0,
            currency: CURRENCY.to_owned(),
            shipping_address: shipping.clone(),
            created_at: rfc3339(now),
            paid_at: None,
            cancelled_at: None,
            refunded_at: None,
            failure_reason: None,
        };
        matsuri_bus::publish_with(
            &mut write,
            now,
            topics::ORDER_PLACED,
            Some(&number),
            &OrderEvent {
                order_id: order_id.clone(),
                user_id: user.as_str().to_owned(),
                order,
            },
        )?;
        write.run(&mut tx).await?;
        tx.commit().await?;
        taken.reserved();
        Ok(Reserved {
            order_id,
            number,
            total: total.0,
            charge_key,
            known: Known { lines: order_lines },
        })
    }

    /// Transaction 2: ends a pending order — paid (cart lines removed, `order.paid`) or
    /// failed (`order.payment_failed`, and after the commit exactly the units the order
    /// took given back). Only the
    /// first settlement of an order changes anything; the order as it ends up is returned.
    /// The answer is also stored for the `Idempotency-Key` that created the order.
    /// `known` is given by the request that reserved the order.
    pub(crate) async fn settle(
        &self,
        order_id: &str,
        settlement: Settlement,
        known: Option<Known>,
    ) -> Result<Order, ShopError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let (status, charge_id, reason) = match &settlement {
            Settlement::Paid { charge_id } => ("paid", Some(charge_id.as_str()), None),
            Settlement::Failed { reason } => ("payment_failed", None, Some(reason.as_str())),
        };
        let row: Option<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE orders SET status = $2, charge_id = $3, failure_reason = $4, updated_at = $5, \
             paid_at = CASE WHEN $2 = 'paid' THEN $5 ELSE NULL END \
             WHERE id = $1 AND status = 'pending_payment' RETURNING {ORDER_COLUMNS}"
        )))
        .bind(order_id)
        .bind(status)
        .bind(charge_id)
        .bind(reason)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            let mut conn = self.db.reader().acquire().await?;
            return Ok(load_order(&mut conn, order_id).await?);
        };
        let (user_id, from_cart) = (row.user_id.clone(), row.from_cart);
        let lines = match known {
            Some(Known { lines }) => lines,
            None => load_lines(&mut tx, order_id).await?,
        };
        let order = order_of(row, lines);
        let order_user = user_id.clone();
        let mut gave_back = false;
        // The rest needs nothing back: it goes to the database in one request.
        let mut write = Statements::new();
        let topic = match settlement {
            Settlement::Paid { .. } => {
                if from_cart == 1 {
                    write.add(
                        "DELETE FROM cart_items WHERE user_id = $1 AND product_id IN \
                         (SELECT product_id FROM order_lines WHERE order_id = $2)",
                        vec![Param::from(&user_id), Param::from(order_id)],
                    );
                }
                topics::ORDER_PAID
            }
            Settlement::Failed { .. } => {
                gave_back = true;
                topics::ORDER_PAYMENT_FAILED
            }
        };
        let response = stored_response(&order, reason);
        IdempotencyStore::complete_for_resource(&mut write, order_id, &response, now);
        matsuri_bus::publish_with(
            &mut write,
            now,
            topic,
            Some(&order.number),
            &OrderEvent {
                order_id: order_id.to_owned(),
                user_id,
                order: order.clone(),
            },
        )?;
        write.run(&mut tx).await?;
        tx.commit().await?;
        if !gave_back {
            for line in &order.items {
                self.activity.record(
                    &order_user,
                    matsuri_module::ActivityKind::Purchase,
                    Some(&line.product_id),
                    None,
                );
            }
        }
        if gave_back && let Err(e) = self.allocator.give_back(order_id).await {
            // The delta lapses and the sync hands its units out again.
            tracing::warn!(order_number = %order.number, error = %e, "stock of a failed order not given back yet");
        }
        tracing::info!(order_number = %order.number, status, "order settled");
        Ok(order)
    }
}

/// Counts a checkout's outcome in `matsuri_checkout_total`.
fn count_outcome(error: Option<&ShopError>) {
    let outcome = match error {
        None => "paid",
        Some(ShopError::OutOfStock { .. }) => "out_of_stock",
        Some(ShopError::PaymentDeclined { .. }) => "payment_declined",
        Some(ShopError::GatewayFailed { .. }) => "payment_gateway_error",
        Some(ShopError::Internal(_)) => "error",
        Some(_) => "rejected",
    };
    metrics::counter!("matsuri_checkout_total", "outcome" => outcome).increment(1);
}

fn overflow() -> ShopError {
    ShopError::invalid("items", "the order total is too large")
}

/// The answer a settled order gives: the order, or why its payment failed.
fn order_result(order: Order) -> Result<Order, ShopError> {
    match order.status {
        OrderStatus::Paid | OrderStatus::PendingPayment | OrderStatus::Cancelled => Ok(order),
        OrderStatus::PaymentFailed => Err(failure_of(&order, None)),
    }
}

fn failure_of(order: &Order, reason: Option<&str>) -> ShopError {
    match reason.or(order.failure_reason.as_deref()) {
        Some(GATEWAY_ERROR_REASON) => ShopError::GatewayFailed {
            order_number: order.number.clone(),
        },
        reason => ShopError::PaymentDeclined {
            order_number: order.number.clone(),
            reason: reason.unwrap_or("the card was declined").to_owned(),
        },
    }
}

/// What `POST /orders` answers for a settled order, to store for its `Idempotency-Key`.
fn stored_response(order: &Order, reason: Option<&str>) -> StoredResponse {
    match order.status {
        OrderStatus::PaymentFailed => {
            StoredResponse::refusal(&ApiError::from(failure_of(order, reason)))
        }
        _ => StoredResponse::created(order),
    }
}
