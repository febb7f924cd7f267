//! A small typed client for the parts of the API the scenarios use.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// A status and body, or the transport error that prevented one.
pub type Answer = Result<(u16, Value), reqwest::Error>;

impl Api {
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            http,
            base: format!("{}/api/v1", base.trim_end_matches('/')),
        })
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Signs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
                None,
            )
            .await
            .context("signing in")?;
        anyhow::ensure!(
            status == 200,
            "signing in as {email} answered {status}: {body}"
        );
        token_of(&body)
    }

    /// Registers a user and returns the token.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/auth/register",
                None,
                Some(&json!({"email": email, "password": password, "name": name})),
                None,
            )
            .await
            .context("registering")?;
        anyhow::ensure!(
            status == 201,
            "registering {email} answered {status}: {body}"
        );
        token_of(&body)
    }
}

fn token_of(body: &Value) -> anyhow::Result<String> {
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("the answer carries no token")
}
