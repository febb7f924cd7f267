//! Recommendations (seed 000 §3): the activity log fed by the API and the shop, the batch
//! on a small shop whose right answers are known, runs that crash or cross, serving with
//! its popular fallback, and the contract's refusals.

mod groups;
mod runs;
mod serving;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Two shops in one: each group's users look only at their group's products.
pub struct Groups {
    /// Product ids of group A, then of group B.
    pub a: Vec<String>,
    pub b: Vec<String>,
    /// Each user's token, group, and the product they bought.
    pub users: Vec<(String, char, String)>,
}

/// Products per group.
pub const ITEMS: usize = 30;

/// Creates both groups' products and users, and their activity: three days of views of
/// five neighbouring products (one bought), then on a fourth day two more, the day the
/// offline evaluation holds out. Group B has more users, so its products are the popular
/// ones. The clock ends a little after the last day.
pub async fn two_groups(app: &TestApp) -> Groups {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for k in 0..ITEMS {
        a.push(app.create_product(&format!("A{k:02}"), 1_000, 100).await);
        b.push(app.create_product(&format!("B{k:02}"), 2_000, 100).await);
    }
    let tokens_a = app.register_crowd("group-a-", 12).await;
    let tokens_b = app.register_crowd("group-b-", 18).await;
    let mut users = Vec::new();
    for (group, tokens, items) in [('A', &tokens_a, &a), ('B', &tokens_b, &b)] {
        for (n, token) in tokens.iter().enumerate() {
            let start = (n * 2) % ITEMS;
            users.push((
                token.clone(),
                group,
                items[start].clone(),
                start,
                items.clone(),
            ));
        }
    }
    for day in 0..3 {
        for (token, _, _, start, items) in &users {
            for offset in 0..5 {
                let product = &items[(start + offset) % ITEMS];
                activity(app, token, json!({"kind": "view", "product_id": product})).await;
            }
            if day == 2 {
                let bought = &items[*start];
                activity(
                    app,
                    token,
                    json!({"kind": "cart_add", "product_id": bought}),
                )
                .await;
                activity(
                    app,
                    token,
                    json!({"kind": "purchase", "product_id": bought}),
                )
                .await;
            }
        }
        app.clock.advance(Duration::from_secs(86_400));
    }
    app.clock.advance(Duration::from_secs(3_600));
    for (token, _, _, start, items) in &users {
        for offset in 5..7 {
            let product = &items[(start + offset) % ITEMS];
            activity(app, token, json!({"kind": "view", "product_id": product})).await;
        }
    }
    app.clock.advance(Duration::from_secs(3_600));
    app.components.recs.log().flush().await;
    Groups {
        a,
        b,
        users: users
            .into_iter()
            .map(|(token, group, bought, _, _)| (token, group, bought))
            .collect(),
    }
}

/// Posts an activity; it must be accepted.
pub async fn activity(app: &TestApp, token: &str, body: Value) {
    let res = app.post("/activity", Some(token), body).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
}

/// Runs the batch to the end in the test.
pub async fn run_batch(app: &TestApp) -> matsuri_recs::RunSummary {
    app.components
        .recs
        .run_now("test", None, tokio_util::sync::CancellationToken::new())
        .await
        .expect("the run succeeds")
}

/// The product ids of a recommendation or related answer.
pub fn ids(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["product_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
