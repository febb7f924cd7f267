//! The marketplace protocol (`docs/marketplace.md`): what a connector does with a
//! marketplace that sells our stock beside the shop — pull the orders placed there since
//! a cursor, move units into or out of its listing, and report the orders we shipped —
//! and the built-in connector that speaks it over HTTP.
//!
//! Stock moves by adjustment, never by setting a figure: a marketplace that sold units
//! since our last pull keeps them sold, and answers how much of each adjustment it
//! actually applied (it removes at most what it still lists). Each adjustment carries an
//! id the marketplace applies once, so a retry after a lost answer moves nothing twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An order placed on the marketplace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOrder {
    pub id: String,
    /// Milliseconds since the epoch.
    pub placed_at: i64,
    pub lines: Vec<MarketLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketLine {
    pub sku: String,
    pub quantity: i64,
}

/// A page of orders after a cursor; `next` is the cursor to ask after next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersPage {
    pub orders: Vec<MarketOrder>,
    pub next: Option<String>,
}

/// Units to add to (positive) or take from (negative) a SKU's listing, once per `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub id: String,
    pub sku: String,
    pub delta: i64,
}

/// What the marketplace did with an adjustment: the change it applied (between 0 and the
/// delta) and what it lists now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjusted {
    pub id: String,
    pub applied: i64,
    pub listed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdjustRequest {
    pub adjustments: Vec<Adjustment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdjustAnswer {
    pub results: Vec<Adjusted>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShipmentsRequest {
    pub orders: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the marketplace could not be reached: {0}")]
    Unreachable(String),
    #[error("the marketplace answered {status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("the marketplace's answer could not be read: {0}")]
    BadAnswer(String),
}

/// What inventory needs from a marketplace.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Orders placed after `after` (from the first when `None`), oldest first.
    async fn orders(&self, after: Option<&str>) -> Result<OrdersPage, ConnectorError>;
    /// Applies each adjustment once; answers for every one of them.
    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<Adjusted>, ConnectorError>;
    /// Tells the marketplace these of its orders were shipped.
    async fn ship(&self, orders: &[String]) -> Result<(), ConnectorError>;
}

/// The built-in connector: JSON over HTTP with a bearer token.
pub struct HttpConnector {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl HttpConnector {
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Self, ConnectorError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConnectorError::Unreachable(e.to_string()))?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ConnectorError> {
        let answer = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ConnectorError::Unreachable(without_url(&e)))?;
        let status = answer.status();
        if !status.is_success() {
            let mut detail = answer.text().await.unwrap_or_default();
            detail.truncate(200);
            return Err(ConnectorError::Refused {
                status: status.as_u16(),
                detail,
            });
        }
        answer
            .json()
            .await
            .map_err(|e| ConnectorError::BadAnswer(without_url(&e)))
    }
}

/// What went wrong with a request, without its URL or body, which may carry secrets.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_decode() {
        "the body is not the expected JSON".into()
    } else {
        "request failed".into()
    }
}

#[async_trait::async_trait]
impl Connector for HttpConnector {
    async fn orders(&self, after: Option<&str>) -> Result<OrdersPage, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}/v1/orders", self.base))
            .map_err(|e| ConnectorError::Unreachable(e.to_string()))?;
        if let Some(after) = after {
            url.query_pairs_mut().append_pair("after", after);
        }
        self.send(self.client.get(url)).await
    }

    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<Adjusted>, ConnectorError> {
        let body = AdjustRequest {
            adjustments: adjustments.to_vec(),
        };
        let answer: AdjustAnswer = self
            .send(
                self.client
                    .post(format!("{}/v1/stock/adjustments", self.base))
                    .json(&body),
            )
            .await?;
        Ok(answer.results)
    }

    async fn ship(&self, orders: &[String]) -> Result<(), ConnectorError> {
        let body = ShipmentsRequest {
            orders: orders.to_vec(),
        };
        let _: serde_json::Value = self
            .send(
                self.client
                    .post(format!("{}/v1/shipments", self.base))
                    .json(&body),
            )
            .await?;
        Ok(())
    }
}
