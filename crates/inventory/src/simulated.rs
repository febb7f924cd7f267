//! A simulated marketplace speaking the protocol of `marketplace.rs`, for tests and demos
//! (`matsuri dev marketplace`): it lists what it was given, shoppers buy from that
//! listing, and it keeps every order and shipment in memory. It can be switched to
//! answer 503, like a marketplace that is down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use matsuri_core::Clock;

use crate::marketplace::{
    AdjustAnswer, AdjustRequest, Adjusted, MarketLine, MarketOrder, OrdersPage, ShipmentsRequest,
};

/// Most orders one page answers.
const PAGE: usize = 100;

#[derive(Default)]
struct Market {
    listed: BTreeMap<String, i64>,
    sold: BTreeMap<String, i64>,
    orders: Vec<MarketOrder>,
    adjusted: HashMap<String, Adjusted>,
    shipped: HashSet<String>,
}

/// A SKU's figures on the simulated marketplace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub listed: i64,
    pub sold: i64,
}

pub struct SimulatedMarketplace {
    token: String,
    market: Mutex<Market>,
    down: AtomicBool,
}

#[derive(Deserialize)]
struct After {
    after: Option<String>,
}

impl SimulatedMarketplace {
    pub fn new(token: &str) -> Arc<Self> {
        Arc::new(Self {
            token: token.to_owned(),
            market: Mutex::new(Market::default()),
            down: AtomicBool::new(false),
        })
    }

    fn market(&self) -> std::sync::MutexGuard<'_, Market> {
        self.market
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The protocol's routes.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/v1/orders", get(orders))
            .route("/v1/stock", get(stock))
            .route("/v1/stock/adjustments", post(adjust))
            .route("/v1/shipments", post(ship))
            .with_state(self.clone())
    }

    /// Whether it answers 503 to everything.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A shopper buys `quantity` of `sku` when that many are listed.
    pub fn buy(&self, sku: &str, quantity: i64) -> bool {
        let mut market = self.market();
        let market = &mut *market;
        let Some(listed) = market.listed.get_mut(sku).filter(|l| **l >= quantity) else {
            return false;
        };
        *listed -= quantity;
        *market.sold.entry(sku.to_owned()).or_insert(0) += quantity;
        let id = format!("mp-{:08}", market.orders.len() + 1);
        market.orders.push(MarketOrder {
            id,
            placed_at: matsuri_core::clock::SystemClock.now_ms(),
            lines: vec![MarketLine {
                sku: sku.to_owned(),
                quantity,
            }],
        });
        true
    }

    pub fn listing(&self, sku: &str) -> Listing {
        let market = self.market();
        Listing {
            listed: market.listed.get(sku).copied().unwrap_or(0),
            sold: market.sold.get(sku).copied().unwrap_or(0),
        }
    }

    pub fn shipped(&self) -> Vec<String> {
        let mut shipped: Vec<String> = self.market().shipped.iter().cloned().collect();
        shipped.sort();
        shipped
    }

    /// Shoppers buying one or two units of a listed SKU, about `per_second` times a
    /// second, until `stop`.
    pub async fn run_shoppers(
        self: Arc<Self>,
        per_second: u32,
        seed: u64,
        stop: CancellationToken,
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let pause = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
            let listed: Vec<String> = self
                .market()
                .listed
                .iter()
                .filter(|(_, l)| **l > 0)
                .map(|(sku, _)| sku.clone())
                .collect();
            if listed.is_empty() {
                continue;
            }
            let sku = &listed[rng.random_range(0..listed.len())];
            self.buy(sku, rng.random_range(1..=2));
        }
    }

    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        if self.down.load(Ordering::SeqCst) {
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        let expected = format!("Bearer {}", self.token);
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        (given != Some(expected.as_str())).then(|| StatusCode::UNAUTHORIZED.into_response())
    }
}

async fn orders(
    State(market): State<Arc<SimulatedMarketplace>>,
    headers: HeaderMap,
    Query(after): Query<After>,
) -> Response {
    if let Some(refused) = market.refuse(&headers) {
        return refused;
    }
    let state = market.market();
    let start = match after.after.as_deref() {
        Some(after) => state
            .orders
            .iter()
            .position(|o| o.id == after)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    let orders: Vec<MarketOrder> = state
        .orders
        .iter()
        .skip(start)
        .take(PAGE)
        .cloned()
        .collect();
    let next = orders.last().map(|o| o.id.clone());
    Json(OrdersPage { orders, next }).into_response()
}

async fn stock(State(market): State<Arc<SimulatedMarketplace>>, headers: HeaderMap) -> Response {
    if let Some(refused) = market.refuse(&headers) {
        return refused;
    }
    let state = market.market();
    let listings: BTreeMap<String, Listing> = state
        .listed
        .keys()
        .chain(state.sold.keys())
        .map(|sku| {
            (
                sku.clone(),
                Listing {
                    listed: state.listed.get(sku).copied().unwrap_or(0),
                    sold: state.sold.get(sku).copied().unwrap_or(0),
                },
            )
        })
        .collect();
    Json(listings).into_response()
}

async fn adjust(
    State(market): State<Arc<SimulatedMarketplace>>,
    headers: HeaderMap,
    Json(request): Json<AdjustRequest>,
) -> Response {
    if let Some(refused) = market.refuse(&headers) {
        return refused;
    }
    let mut state = market.market();
    let state = &mut *state;
    let mut results = Vec::with_capacity(request.adjustments.len());
    for adjustment in request.adjustments {
        if let Some(earlier) = state.adjusted.get(&adjustment.id) {
            results.push(earlier.clone());
            continue;
        }
        let listed = state.listed.entry(adjustment.sku.clone()).or_insert(0);
        let applied = adjustment.delta.max(-*listed);
        *listed += applied;
        let answer = Adjusted {
            id: adjustment.id.clone(),
            applied,
            listed: *listed,
        };
        state.adjusted.insert(adjustment.id, answer.clone());
        results.push(answer);
    }
    Json(AdjustAnswer { results }).into_response()
}

async fn ship(
    State(market): State<Arc<SimulatedMarketplace>>,
    headers: HeaderMap,
    Json(request): Json<ShipmentsRequest>,
) -> Response {
    if let Some(refused) = market.refuse(&headers) {
        return refused;
    }
    let mut state = market.market();
    let shipped = request.orders.len();
    state.shipped.extend(request.orders);
    Json(serde_json::json!({ "shipped": shipped })).into_response()
}
