//! The shop's HTTP routes (`api.md`, "Shop"): thin handlers that parse, call the service
//! and map the result.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::extract::integer;
use matsuri_core::page::{Page, PageQuery};
use matsuri_core::{ApiError, AuthUser, IdempotencyKey, Json, Problem, Query, StaffUser};
use matsuri_module::idempotency::{Keyed, Refused};

use crate::catalog::NewProduct;
use crate::{
    Cart, CheckoutRequest, Invoice, Order, Product, SentMail, ShippingAddress, ShopService,
};

pub fn routes(shop: Arc<ShopService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_product))
        .routes(routes!(set_stock))
        .routes(routes!(list_products))
        .routes(routes!(get_product))
        .routes(routes!(get_cart))
        .routes(routes!(add_cart_item))
        .routes(routes!(update_cart_item, remove_cart_item))
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(list_invoices))
        .routes(routes!(list_mails))
        .with_state(shop)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateProductRequest {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(format = "line", max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    #[serde(deserialize_with = "integer::required")]
    pub price: i64,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "integer::required")]
    pub stock: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetStockRequest {
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "integer::required")]
    pub stock: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddCartItemRequest {
    pub product_id: String,
    /// At most `shop.max_line_quantity` (100) units of a product in the cart.
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "integer::required")]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateCartItemRequest {
    /// 0 removes the line; at most `shop.max_line_quantity` (100).
    #[schema(minimum = 0, maximum = 100)]
    #[serde(deserialize_with = "integer::required")]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    /// Only `card` for now.
    #[schema(value_type = CardMethod)]
    pub method: String,
    /// A test token: `tok_visa`, `tok_declined`, `tok_gateway_error`, `tok_slow`.
    #[schema(required = true, nullable = false, format = "line", max_length = 128)]
    pub card_token: Option<String>,
}

/// How an order is paid, as the document declares it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardMethod {
    Card,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct OrderItemRequest {
    pub product_id: String,
    /// At most `shop.max_line_quantity` (100).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "integer::required")]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CreateOrderRequest {
    pub shipping_address: ShippingAddress,
    pub payment: PaymentRequest,
    /// Order these instead of the cart: at most `shop.max_order_lines` (50), each product
    /// once.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    pub items: Option<Vec<OrderItemRequest>>,
}

/// Create a product (staff).
#[utoipa::path(post, path = "/admin/products", tag = "shop", security(("bearer" = [])), request_body = CreateProductRequest,
    responses((status = 201, body = Product), (status = 403, body = Problem), (status = 409, description = "sku_taken", body = Problem),
        (status = 422, body = Problem)))]
async fn create_product(
    State(shop): State<Arc<ShopService>>,
    _staff: StaffUser,
    Json(body): Json<CreateProductRequest>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    let new = NewProduct::parse(
        &body.sku,
        &body.name,
        body.description.as_deref(),
        body.price,
        body.stock,
    )?;
    Ok((StatusCode::CREATED, Json(shop.create_product(new).await?)))
}

/// Set how many units of a product can be sold (staff).
#[utoipa::path(put, path = "/admin/products/{id}/stock", tag = "shop", security(("bearer" = [])), request_body = SetStockRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = Product), (status = 404, description = "product_not_found", body = Problem), (status = 422, body = Problem)))]
async fn set_stock(
    State(shop): State<Arc<ShopService>>,
    _staff: StaffUser,
    Path(id): Path<String>,
    Json(body): Json<SetStockRequest>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(shop.set_stock(&id, body.stock).await?))
}

/// The catalog.
#[utoipa::path(get, path = "/products", tag = "shop", params(PageQuery), responses((status = 200, body = Page<Product>)))]
async fn list_products(
    State(shop): State<Arc<ShopService>>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Product>>, ApiError> {
    let limit = page.limit()?;
    let rows = shop.products_after(page.cursor.as_deref(), limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |p| p.id.clone())))
}

/// One product.
#[utoipa::path(get, path = "/products/{id}", tag = "shop", params(("id" = String, Path)),
    responses((status = 200, body = Product), (status = 404, description = "product_not_found", body = Problem)))]
async fn get_product(
    State(shop): State<Arc<ShopService>>,
    user: Option<AuthUser>,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let product = shop.product(&id).await?;
    if let Some(AuthUser(identity)) = user {
        shop.record_view(identity.user_id.as_str(), &product.id);
    }
    Ok(Json(product))
}

/// The caller's cart.
#[utoipa::path(get, path = "/cart", tag = "shop", security(("bearer" = [])), responses((status = 200, body = Cart)))]
async fn get_cart(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(shop.cart(&who.user_id).await?))
}

/// Add units of a product to the cart.
#[utoipa::path(post, path = "/cart/items", tag = "shop", security(("bearer" = [])), request_body = AddCartItemRequest,
    responses((status = 200, body = Cart), (status = 404, description = "product_not_found", body = Problem),
        (status = 409, description = "out_of_stock", body = Problem), (status = 422, body = Problem)))]
async fn add_cart_item(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Json(body): Json<AddCartItemRequest>,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(
        shop.add_to_cart(&who.user_id, &body.product_id, body.quantity)
            .await?,
    ))
}

/// Set a cart line's quantity (0 removes it).
#[utoipa::path(patch, path = "/cart/items/{product_id}", tag = "shop", security(("bearer" = [])), request_body = UpdateCartItemRequest,
    params(("product_id" = String, Path)),
    responses((status = 200, body = Cart), (status = 404, description = "product_not_found", body = Problem),
        (status = 409, description = "out_of_stock", body = Problem)))]
async fn update_cart_item(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Path(product_id): Path<String>,
    Json(body): Json<UpdateCartItemRequest>,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(
        shop.set_cart_quantity(&who.user_id, &product_id, body.quantity)
            .await?,
    ))
}

/// Remove a product from the cart.
#[utoipa::path(delete, path = "/cart/items/{product_id}", tag = "shop", security(("bearer" = [])),
    params(("product_id" = String, Path)), responses((status = 200, body = Cart)))]
async fn remove_cart_item(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Path(product_id): Path<String>,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(
        shop.remove_from_cart(&who.user_id, &product_id).await?,
    ))
}

const ORDER_SCOPE: &str = "orders";

/// Check out the cart (or `items`) and pay.
#[utoipa::path(post, path = "/orders", tag = "shop", security(("bearer" = [])), request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "replays the first answer for the same key")),
    responses((status = 201, body = Order), (status = 402, description = "payment_declined", body = Problem),
        (status = 404, description = "product_not_found", body = Problem),
        (status = 409, description = "out_of_stock", body = Problem),
        (status = 422, description = "cart_empty, validation_failed, idempotency_key_reused", body = Problem),
        (status = 502, description = "payment_gateway_error", body = Problem)))]
async fn create_order(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<CreateOrderRequest>,
) -> Response {
    let settings = shop.settings();
    let items: Option<Vec<(String, i64)>> = body.items.as_ref().map(|items| {
        items
            .iter()
            .map(|i| (i.product_id.clone(), i.quantity))
            .collect()
    });
    let request = match CheckoutRequest::parse(
        &body.shipping_address,
        &body.payment.method,
        body.payment.card_token.as_deref(),
        items.as_deref(),
        settings.max_line_quantity,
        settings.max_order_lines,
    ) {
        Ok(request) => request,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let keyed = Keyed::new(
        shop.idempotency(),
        who.user_id.as_str(),
        ORDER_SCOPE,
        key.as_deref(),
        &body,
    );
    // A keyed checkout refused before anything changes (the common answer in a stampede)
    // is answered and remembered for its key in a single write.
    let mut checked = None;
    if key.is_some() {
        match shop.precheck(&who.user_id, &request).await {
            Ok(lines) => checked = Some(lines),
            Err(e) => {
                if let Some(answer) = keyed.refuse_early(ApiError::from(e)).await {
                    return answer;
                }
            }
        }
    }
    let (shop, user, unused) = (&shop, &who.user_id, &mut checked);
    let answer = keyed
        .run(StatusCode::CREATED, |link| async move {
            shop.checkout(user, request, unused.take(), link)
                .await
                .map_err(|e| {
                    // A payment failure stored its answer for the key while settling the
                    // order; any other failure gives the key back unless an order was
                    // made with it, in which case the recovery sweep answers it.
                    if e.is_settled() {
                        Refused::Settled(e.into())
                    } else {
                        Refused::unsettled(e)
                    }
                })
        })
        .await;
    // Answered from the key's earlier use, this request wrote no order: the units its
    // precheck took go back before it is answered, so no retry holds stock a moment.
    if let Some(unused) = checked {
        unused.give_back().await;
    }
    answer
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "shop", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Order>)))]
async fn list_orders(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Order>>, ApiError> {
    let limit = page.limit()?;
    let rows = shop
        .orders_of(&who.user_id, page.cursor.as_deref(), limit)
        .await?;
    Ok(Json(Page::from_keyed_rows(rows, limit)))
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/orders/{number}", tag = "shop", security(("bearer" = [])), params(("number" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
async fn get_order(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Path(number): Path<String>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(shop.order_of(&who.user_id, &number).await?))
}

/// Cancels one of the caller's paid orders before it ships: its units go back on sale and
/// its payment is refunded. Cancelling it again answers it as it is.
#[utoipa::path(post, path = "/orders/{number}/cancel", tag = "shop", security(("bearer" = [])), params(("number" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
        (status = 409, description = "order_shipped, order_not_cancellable", body = Problem)))]
async fn cancel_order(
    State(shop): State<Arc<ShopService>>,
    AuthUser(who): AuthUser,
    Path(number): Path<String>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(shop.cancel_order(&who.user_id, &number).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvoiceQuery {
    /// Only the invoice of this order number.
    pub order: Option<String>,
    /// How many items to return (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Invoices made by the billing consumer (staff).
#[utoipa::path(get, path = "/admin/invoices", tag = "events", security(("bearer" = [])), params(InvoiceQuery),
    responses((status = 200, body = Page<Invoice>), (status = 403, body = Problem)))]
async fn list_invoices(
    State(shop): State<Arc<ShopService>>,
    _staff: StaffUser,
    Query(query): Query<InvoiceQuery>,
) -> Result<Json<Page<Invoice>>, ApiError> {
    let limit = PageQuery {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let rows = shop
        .invoices(query.order.as_deref(), query.cursor.as_deref(), limit)
        .await?;
    Ok(Json(Page::from_keyed_rows(rows, limit)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MailQuery {
    /// Only mails to this address.
    pub to: Option<String>,
    /// How many items to return (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// Order mails sent by the notification consumer (staff).
#[utoipa::path(get, path = "/admin/mails", tag = "events", security(("bearer" = [])), params(MailQuery),
    responses((status = 200, body = Page<SentMail>), (status = 403, body = Problem)))]
async fn list_mails(
    State(shop): State<Arc<ShopService>>,
    _staff: StaffUser,
    Query(query): Query<MailQuery>,
) -> Result<Json<Page<SentMail>>, ApiError> {
    let limit = PageQuery {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let offset = match query.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid_request("not a cursor from this list"))?,
    };
    let rows = shop.sent_mails(query.to.as_deref(), offset, limit).await?;
    let more = rows.len() > limit as usize;
    let mut items = rows;
    items.truncate(limit as usize);
    let next_cursor = more.then(|| (offset + i64::from(limit)).to_string());
    Ok(Json(Page { items, next_cursor }))
}
