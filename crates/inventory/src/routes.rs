//! Inventory's staff routes (`api.md`, "Inventory"): imports, stock per SKU, flash-sale
//! mode and the reconciliation report.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use matsuri_core::{ApiError, IdempotencyKey, Json, Problem, Query, StaffUser};

use crate::channels::{Channel, Channels, NewChannel};
use crate::error::InventoryError;
use crate::imports::{Imported, Kind};
use crate::stock::{Difference, FlashSale, Stock, StockView};

pub fn routes(stock: Arc<Stock>, channels: Arc<Channels>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(list_stock))
        .routes(routes!(get_stock))
        .routes(routes!(reconciliation))
        .with_state(stock)
        .merge(
            OpenApiRouter::new()
                .routes(routes!(get_flash_sale, set_flash_sale))
                .routes(routes!(list_channels, create_channel))
                .routes(routes!(delete_channel))
                .with_state(channels),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `book`, `sales`, `purchases`, `adjustments` or `shipments`.
    #[param(pattern = "^(book|sales|purchases|adjustments|shipments)$")]
    pub kind: String,
}

/// A temporary copy of an uploaded file, removed when dropped.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams the body to a temporary file, refusing it past `limit` bytes.
async fn spool(body: Body, limit: u64) -> Result<Upload, InventoryError> {
    let upload = Upload(std::env::temp_dir().join(format!(
        "matsuri-import-{}.csv",
        matsuri_core::ids::new_uuid_v7()
    )));
    let mut file = tokio::fs::File::create(&upload.0).await?;
    let mut stream = body.into_data_stream();
    let mut size = 0_u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| InventoryError::Internal(e.into()))?;
        size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        if size > limit {
            return Err(InventoryError::TooLarge(limit));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(upload)
}

/// Import a CSV file into the ledger (staff): checked whole, applied whole, once.
#[utoipa::path(post, path = "/admin/inventory/imports", tag = "inventory", security(("bearer" = [])),
    params(ImportQuery, ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "the same key (or the same file) imports once")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = Imported), (status = 413, body = Problem),
        (status = 422, description = "invalid_import, validation_failed", body = Problem)))]
async fn import(
    State(stock): State<Arc<Stock>>,
    _staff: StaffUser,
    IdempotencyKey(key): IdempotencyKey,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    let kind = Kind::parse(&query.kind)?;
    let upload = spool(body, stock.settings().max_import_bytes).await?;
    let imported = stock
        .import_file(kind, upload.0.clone(), key.as_deref(), None)
        .await?;
    Ok((StatusCode::CREATED, Json(imported)))
}

/// Every SKU's stock (staff).
#[utoipa::path(get, path = "/admin/inventory/stock", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = Vec<StockView>)))]
async fn list_stock(
    State(stock): State<Arc<Stock>>,
    _staff: StaffUser,
) -> Result<Json<Vec<StockView>>, ApiError> {
    Ok(Json(stock.all_stock().await?))
}

/// One SKU's stock with the terms of its net (staff).
#[utoipa::path(get, path = "/admin/inventory/stock/{sku}", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path)),
    responses((status = 200, body = StockView), (status = 404, body = Problem)))]
async fn get_stock(
    State(stock): State<Arc<Stock>>,
    _staff: StaffUser,
    Path(sku): Path<String>,
) -> Result<Json<StockView>, ApiError> {
    Ok(Json(stock.stock(&sku).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FlashSaleRequest {
    pub enabled: bool,
}

/// Whether flash-sale mode is on (staff).
#[utoipa::path(get, path = "/admin/inventory/flash-sale", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = FlashSale)))]
async fn get_flash_sale(
    State(channels): State<Arc<Channels>>,
    _staff: StaffUser,
) -> Result<Json<FlashSale>, ApiError> {
    Ok(Json(
        channels
            .stock()
            .flash_sale()
            .await
            .map_err(InventoryError::from)?,
    ))
}

/// Turn flash-sale mode on (the sync leaves the allocation store alone) or off (the store
/// is reconciled with the ledger and the sync resumes) (staff).
#[utoipa::path(put, path = "/admin/inventory/flash-sale", tag = "inventory", security(("bearer" = [])),
    request_body = FlashSaleRequest, responses((status = 200, body = FlashSale), (status = 422, body = Problem)))]
async fn set_flash_sale(
    State(channels): State<Arc<Channels>>,
    _staff: StaffUser,
    Json(body): Json<FlashSaleRequest>,
) -> Result<Json<FlashSale>, ApiError> {
    Ok(Json(channels.set_flash_sale(body.enabled).await?))
}

/// The marketplace connections with their status (staff).
#[utoipa::path(get, path = "/admin/channels", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = Vec<Channel>)))]
async fn list_channels(
    State(channels): State<Arc<Channels>>,
    _staff: StaffUser,
) -> Result<Json<Vec<Channel>>, ApiError> {
    Ok(Json(channels.list().await?))
}

/// Connect a marketplace (staff); its first cycle runs at the channel job's next turn.
#[utoipa::path(post, path = "/admin/channels", tag = "inventory", security(("bearer" = [])),
    request_body = NewChannel,
    responses((status = 201, body = Channel), (status = 422, description = "validation_failed", body = Problem)))]
async fn create_channel(
    State(channels): State<Arc<Channels>>,
    _staff: StaffUser,
    Json(body): Json<NewChannel>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    Ok((StatusCode::CREATED, Json(channels.create(body).await?)))
}

/// Disconnect a marketplace (staff): its listing is taken back when it answers, and its
/// units return to the shop.
#[utoipa::path(delete, path = "/admin/channels/{id}", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_channel(
    State(channels): State<Arc<Channels>>,
    _staff: StaffUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    channels.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the allocation store and the ledger disagreed when flash-sale mode last ended
/// (staff).
#[utoipa::path(get, path = "/admin/inventory/reconciliation", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = Vec<Difference>)))]
async fn reconciliation(
    State(stock): State<Arc<Stock>>,
    _staff: StaffUser,
) -> Result<Json<Vec<Difference>>, ApiError> {
    Ok(Json(
        stock.reconciliation().await.map_err(InventoryError::from)?,
    ))
}
