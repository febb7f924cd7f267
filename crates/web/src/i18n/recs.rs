//! The texts of recommendations, beside the main table; looked up with it as one: the
//! storefront's "recommended for you" and "bought together", and the staff page of runs.

/// (key, Japanese, English).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("recs.for_you", "あなたへのおすすめ", "Recommended for you"),
    ("recs.related", "一緒に買われている商品", "Bought together"),
    ("js.recs.popular", "いま人気の商品", "Popular now"),
    (
        "js.recs.for_you",
        "あなたへのおすすめ",
        "Recommended for you",
    ),
    (
        "js.recs.reason.similar_items",
        "見た商品に近い",
        "Like what you viewed",
    ),
    (
        "js.recs.reason.similar_users",
        "似たお客様が購入",
        "Bought by similar customers",
    ),
    ("js.recs.reason.popular", "人気", "Popular"),
    (
        "js.recs.none",
        "まだおすすめはありません",
        "No recommendations yet",
    ),
    ("staff.recommendations", "レコメンド", "Recommendations"),
    (
        "staff.recommendations_hint",
        "毎晩のバッチが直近の行動からおすすめを計算します。評価は各ユーザーの最終日を伏せて学習し、人気順と比べます。",
        "The nightly batch computes recommendations from recent activity. The evaluation holds out each user's last day and compares with the most popular items.",
    ),
    ("staff.recommendations_run", "今すぐ実行", "Run now"),
    (
        "js.recs.started",
        "実行を開始しました",
        "The run has started",
    ),
    ("js.recs.started_at", "開始", "Started"),
    ("js.recs.status", "状態", "Status"),
    ("js.recs.stage", "段階", "Stage"),
    ("js.recs.events", "イベント", "Events"),
    ("js.recs.users", "ユーザー", "Users"),
    ("js.recs.items", "商品", "Items"),
    ("js.recs.precision", "P@10", "P@10"),
    ("js.recs.recall", "R@10", "R@10"),
    ("js.recs.ndcg", "NDCG@10", "NDCG@10"),
    ("js.recs.popular_precision", "人気順 P@10", "Popular P@10"),
    ("js.recs.seconds", "秒", "Seconds"),
    ("js.recs.running", "実行中", "running"),
    ("js.recs.succeeded", "成功", "succeeded"),
    ("js.recs.failed", "失敗", "failed"),
];
