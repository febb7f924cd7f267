//! A shop with two disjoint taste groups: every user is recommended products of their own
//! group and never one they bought, related products stay in their group, and the offline
//! evaluation beats the popularity baseline.

use reqwest::StatusCode;

use super::{ids, run_batch, two_groups};
use crate::helpers::{Backend, spawn_app};

crate::coord_backend_tests!(each_group_gets_its_own_products);

async fn each_group_gets_its_own_products(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = two_groups(&app).await;
    let summary = run_batch(&app).await;
    assert_eq!(summary.users, 30);
    // Group A's last product nobody looked at.
    assert_eq!(summary.items, 59);
    let metrics = summary.metrics;
    assert_eq!(metrics.users_evaluated, 30, "{metrics:?}");
    assert!(
        metrics.precision_at_10 > metrics.popular_precision_at_10,
        "{metrics:?}"
    );
    assert!(
        metrics.recall_at_10 > 0.5 && metrics.ndcg_at_10 > 0.0,
        "{metrics:?}"
    );

    for (token, group, bought) in &shop.users {
        let res = app.get("/recommendations/me?limit=10", Some(token)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let got = ids(&res.body);
        assert!(!got.is_empty() && got.len() <= 10, "{}", res.text);
        let own = if *group == 'A' { &shop.a } else { &shop.b };
        assert!(got.iter().all(|p| own.contains(p)), "{group}: {}", res.text);
        assert!(
            !got.contains(bought),
            "recommended what they bought: {}",
            res.text
        );
        assert!(res.body["generated_at"].is_string());
        let item = &res.body["items"][0];
        assert!(
            item["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Product "))
        );
        assert!(item["price"].as_i64().is_some() && item["score"].as_f64().is_some());
        assert_ne!(item["reason"], "popular");
    }

    for (product, own) in [(&shop.a[3], &shop.a), (&shop.b[7], &shop.b)] {
        let res = app.get(&format!("/products/{product}/related"), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let got = ids(&res.body);
        assert!(!got.is_empty() && !got.contains(product), "{}", res.text);
        assert!(got.iter().all(|p| own.contains(p)), "{}", res.text);
    }

    let staff = app.staff_token().await;
    let res = app.get("/admin/recommendations/runs", Some(&staff)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let run = &res.body[0];
    assert_eq!(run["id"], summary.run_id.as_str());
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["users"], 30);
    assert!(run["events"].as_i64().unwrap() > 400);
    assert!(run["metrics"]["precision_at_10"].as_f64().unwrap() > 0.0);
    assert!(run["metrics"]["popular_precision_at_10"].is_number());
    assert!(run["finished_at"].is_string() && run["timings"]["total_ms"].is_number());
}
