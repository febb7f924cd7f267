//! Inventory (seed 002): imports into the ledger, net stock, the allocation store under a
//! stampede with the sync running, give-backs that count once, cancelled orders,
//! flash-sale mode.

mod cancel;
mod channels;
mod flash;
mod imports;
mod storm;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Answer, TestApp};

/// Posts a CSV import as staff, with an `Idempotency-Key` when given.
pub async fn import(
    app: &TestApp,
    token: &str,
    kind: &str,
    csv: impl Into<Vec<u8>>,
    key: Option<&str>,
) -> Answer {
    let mut req = app
        .http
        .post(format!(
            "{}/api/v1/admin/inventory/imports?kind={kind}",
            app.base
        ))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.into());
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type,
        headers,
        text,
    }
}

/// The SKU's stock as the staff API shows it.
pub async fn stock(app: &TestApp, token: &str, sku: &str) -> Value {
    let res = app
        .get(&format!("/admin/inventory/stock/{sku}"), Some(token))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body
}

/// Today's UTC day on the app's clock, as `YYYY-MM-DD`.
pub fn today(app: &TestApp) -> String {
    let day = matsuri_core::timefmt::yyyymmdd(matsuri_core::Clock::now_ms(app.clock.as_ref()));
    format!("{}-{}-{}", &day[0..4], &day[4..6], &day[6..8])
}

/// The sync and the bus, every 10 ms, beside a test's requests until stopped.
pub struct Background {
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    pub fn start(app: &TestApp) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let (stock, bus, flag) = (
            app.components.stock.clone(),
            app.components.bus.clone(),
            running.clone(),
        );
        let task = tokio::spawn(async move {
            while flag.load(Ordering::Relaxed) {
                stock.sync().await.unwrap();
                bus.run_once().await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self { running, task }
    }

    pub async fn stop(self) {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.unwrap();
    }
}
