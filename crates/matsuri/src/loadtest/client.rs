//! A small typed client for the parts of the API the scenarios use.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
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
        let headers: Vec<(&str, &str)> = key
            .map(|key| ("Idempotency-Key", key))
            .into_iter()
            .collect();
        self.send_with(method, path, token, body, &headers).await
    }

    /// Like `send`, with any extra headers (`X-Queue-Token`, `Idempotency-Key`, …).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let res = self.request(method, path, token, body, headers).await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// GETs `path` (one page) and reads the answer as a `T`, which may name only the
    /// fields it needs.
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
    ) -> anyhow::Result<T> {
        let res = self
            .request(reqwest::Method::GET, path, Some(token), None, &[])
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = res.status();
        let bytes = res.bytes().await.with_context(|| format!("GET {path}"))?;
        anyhow::ensure!(
            status == reqwest::StatusCode::OK,
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).with_context(|| format!("reading GET {path}"))
    }

    /// Sends one request; the answer's body is still to be read.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await
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

    /// Registers a user and returns the token and the user's id.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> anyhow::Result<Account> {
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
        Ok(Account {
            token: token_of(&body)?,
            user_id: body["user"]["id"]
                .as_str()
                .map(str::to_owned)
                .context("the answer carries no user id")?,
        })
    }

    /// Every item of a list answer, following `next_cursor` when the server pages it.
    pub async fn list_all(&self, path: &str, token: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page_path = path.to_owned();
        loop {
            let (status, mut body) = self
                .send(reqwest::Method::GET, &page_path, Some(token), None, None)
                .await
                .with_context(|| format!("GET {page_path}"))?;
            anyhow::ensure!(status == 200, "GET {page_path} answered {status}: {body}");
            let Value::Array(page) = body["items"].take() else {
                anyhow::bail!("GET {page_path} answered no items: {body}");
            };
            let last_page = page.is_empty();
            items.extend(page);
            match body["next_cursor"].as_str() {
                Some(cursor) if !last_page => {
                    let glue = if path.contains('?') { '&' } else { '?' };
                    page_path = format!("{path}{glue}cursor={}", escape_query(cursor));
                }
                _ => return Ok(items),
            }
        }
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn escape_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The staff account a scenario sets up its sale with.
#[derive(Debug, clap::Args)]
pub struct StaffLogin {
    #[arg(long, env = "MATSURI_ADMIN_EMAIL")]
    admin_email: String,
    #[arg(long, env = "MATSURI_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
}

impl Api {
    /// Signs in as the staff account and returns the token.
    pub async fn login_staff(&self, staff: &StaffLogin) -> anyhow::Result<String> {
        self.login(&staff.admin_email, &staff.admin_password).await
    }
}

/// A name for this run, so its users and products never collide with an earlier run's.
pub fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{ms:x}")
}

/// A user registered by a scenario.
pub struct Account {
    pub token: String,
    pub user_id: String,
}

impl Api {
    /// Registers `count` users `<who>-<run_id>-<i>@loadtest.localhost` (set-up, with a
    /// progress bar) and returns their tokens in order.
    pub async fn register_many(
        &self,
        who: &str,
        run_id: &str,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<String>> {
        let accounts = self
            .register_accounts(who, run_id, count, concurrency)
            .await?;
        Ok(accounts.into_iter().map(|a| a.token).collect())
    }

    /// Like `register_many`, with each user's id beside the token.
    pub async fn register_accounts(
        &self,
        who: &str,
        run_id: &str,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Account>> {
        let bar = super::stats::progress(count, "register");
        let results: Vec<anyhow::Result<Account>> = futures::stream::iter(0..count)
            .map(|i| {
                let bar = bar.clone();
                let email = format!("{who}-{run_id}-{i}@loadtest.localhost");
                async move {
                    let account = self
                        .register(&email, "load-test-password", "Load test user")
                        .await?;
                    bar.inc(1);
                    Ok(account)
                }
            })
            .buffered(concurrency.clamp(1, 64))
            .collect()
            .await;
        bar.finish_and_clear();
        results.into_iter().collect()
    }
}

fn token_of(body: &Value) -> anyhow::Result<String> {
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("the answer carries no token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_escaped() {
        assert_eq!(escape_query("a+b/c==_~"), "a%2Bb%2Fc%3D%3D_~");
    }
}
