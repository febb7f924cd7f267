//! Japanese and English: which one a request gets (the `matsuri_lang` cookie the switch
//! sets, else `Accept-Language`, else Japanese) and every text the pages show. Texts whose
//! key starts with `js.` or `error.` are also handed to the pages' scripts, so what a
//! script writes (an error in words, a status) comes from the same table.

mod chat;
mod inventory;
mod live;
mod media;
mod recs;
mod social;
mod tickets;

use axum::http::HeaderMap;

use matsuri_core::auth::cookie;

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "matsuri_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.trim();
        if primary.eq_ignore_ascii_case("ja") {
            Some(Lang::Ja)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// The language of a request.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        let accepted = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        preferred(accepted).unwrap_or(Lang::Ja)
    }

    /// The text of `key`; empty when the table lacks it (a test finds every key the
    /// templates and scripts use in the table).
    pub fn text(self, key: &str) -> &'static str {
        all_texts()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, ja, en)| match self {
                Lang::Ja => ja,
                Lang::En => en,
            })
    }

    /// The texts the scripts use, as a JSON object.
    pub fn script_texts(self) -> serde_json::Value {
        let texts = all_texts()
            .filter(|(k, _, _)| k.starts_with("js.") || k.starts_with("error."))
            .map(|(k, ja, en)| {
                let text = if self == Lang::Ja { ja } else { en };
                ((*k).to_owned(), serde_json::Value::from(*text))
            });
        serde_json::Value::Object(texts.collect())
    }
}

/// The first language of ours in an `Accept-Language` list, by quality.
fn preferred(accepted: &str) -> Option<Lang> {
    let mut ranked: Vec<(f32, Lang)> = accepted
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let lang = Lang::parse(parts.next()?)?;
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (quality > 0.0).then_some((quality, lang))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.first().map(|(_, lang)| *lang)
}

/// Yen as the pages show it: `¥3,500`.
pub fn yen(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}¥{grouped}")
}

/// Every text: this table's, then the chat pages', the posts and notifications pages',
/// the live pages' and the image pages'.
fn all_texts() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXTS
        .iter()
        .chain(chat::TEXTS)
        .chain(inventory::TEXTS)
        .chain(recs::TEXTS)
        .chain(social::TEXTS)
        .chain(live::TEXTS)
        .chain(media::TEXTS)
        .chain(tickets::TEXTS)
}

/// (key, Japanese, English).
const TEXTS: &[(&str, &str, &str)] = &[
    ("site.name", "祭り matsuri", "matsuri"),
    ("nav.shop", "ショップ", "Shop"),
    ("nav.cart", "カート", "Cart"),
    ("nav.orders", "注文履歴", "My orders"),
    ("nav.login", "ログイン", "Sign in"),
    ("nav.register", "新規登録", "Sign up"),
    ("nav.logout", "ログアウト", "Sign out"),
    ("nav.language", "English", "日本語"),
    ("nav.skip", "本文へ移動", "Skip to content"),
    ("home.title", "商品一覧", "Products"),
    ("product.add", "カートに入れる", "Add to cart"),
    ("product.quantity", "数量", "Quantity"),
    ("product.back", "商品一覧へ戻る", "Back to the products"),
    ("cart.title", "ショッピングカート", "Your cart"),
    ("cart.total", "合計", "Total"),
    ("cart.checkout", "レジに進む", "Go to checkout"),
    ("checkout.title", "ご注文手続き", "Checkout"),
    ("checkout.shipping", "お届け先", "Shipping address"),
    ("checkout.name", "お名前", "Name"),
    ("checkout.postal_code", "郵便番号", "Postal code"),
    ("checkout.address", "住所", "Address"),
    ("checkout.card", "カード (テスト用)", "Card (test tokens)"),
    (
        "checkout.card.visa",
        "承認される (tok_visa)",
        "Approved (tok_visa)",
    ),
    (
        "checkout.card.declined",
        "拒否される (tok_declined)",
        "Declined (tok_declined)",
    ),
    (
        "checkout.card.gateway",
        "決済代行エラー (tok_gateway_error)",
        "Gateway error (tok_gateway_error)",
    ),
    (
        "checkout.card.slow",
        "時間がかかる (tok_slow)",
        "Slow approval (tok_slow)",
    ),
    ("checkout.pay", "注文を確定する", "Place the order"),
    ("orders.title", "注文履歴", "My orders"),
    (
        "orders.thanks",
        "ご注文ありがとうございました",
        "Thank you for your order",
    ),
    ("login.title", "ログイン", "Sign in"),
    ("login.email", "メールアドレス", "Email"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Sign in"),
    (
        "login.no_account",
        "アカウントをお持ちでない方",
        "No account yet?",
    ),
    (
        "login.failed",
        "メールアドレスまたはパスワードが違います。",
        "The email or the password is wrong.",
    ),
    ("register.title", "新規登録", "Create an account"),
    ("register.name", "お名前", "Name"),
    ("register.submit", "登録する", "Sign up"),
    (
        "register.email_rule",
        "name@example.com のような形で入力してください",
        "a mail address such as name@example.com",
    ),
    (
        "register.name_rule",
        "1〜100文字で入力してください",
        "1 to 100 printable characters",
    ),
    (
        "register.password_hint",
        "8〜128文字",
        "8 to 128 characters",
    ),
    (
        "register.taken",
        "このメールアドレスはすでに登録されています。",
        "This email is already registered.",
    ),
    (
        "register.invalid",
        "入力内容を確認してください。",
        "Please check what you entered.",
    ),
    ("js.loading", "読み込み中…", "Loading…"),
    (
        "js.offline",
        "接続が切れました。再接続しています…",
        "The connection was lost. Retrying…",
    ),
    ("js.in_stock", "在庫", "In stock"),
    ("js.sold_out", "売り切れ", "Sold out"),
    ("js.added", "カートに追加しました", "Added to your cart"),
    ("js.remove", "削除", "Remove"),
    ("js.cart_empty", "カートは空です。", "Your cart is empty."),
    ("js.no_orders", "まだ注文はありません。", "No orders yet."),
    ("js.paying", "決済しています…", "Paying…"),
    ("js.status.paid", "支払い済み", "Paid"),
    (
        "js.status.pending_payment",
        "支払い待ち",
        "Awaiting payment",
    ),
    ("js.status.payment_failed", "支払い失敗", "Payment failed"),
    ("js.status.cancelled", "キャンセル済み", "Cancelled"),
    ("js.cancel_order", "注文をキャンセル", "Cancel this order"),
    (
        "js.cancel_confirm",
        "この注文をキャンセルしますか？代金は返金されます。",
        "Cancel this order? The payment will be refunded.",
    ),
    ("js.refund", "返金", "Refund"),
    ("js.refund_pending", "手続き中", "In progress"),
    ("js.refund_done", "返金済み", "Refunded"),
    (
        "error.order_shipped",
        "発送済みのため、キャンセルできません。",
        "This order has shipped and can no longer be cancelled.",
    ),
    (
        "error.order_not_cancellable",
        "この注文はキャンセルできません。",
        "This order cannot be cancelled.",
    ),
    ("js.items", "点", "items"),
    ("js.total", "合計", "Total"),
    ("js.subtotal", "小計", "Subtotal"),
    ("js.tax", "消費税 (10%)", "Consumption tax (10%)"),
    ("js.order_number", "注文番号", "Order number"),
    ("js.order_status", "状態", "Status"),
    ("js.order_date", "日時", "Date"),
    (
        "error.out_of_stock",
        "在庫が足りません。",
        "Not enough stock.",
    ),
    (
        "error.payment_declined",
        "カードが承認されませんでした。別のカードをお試しください。カートはそのままです。",
        "The card was declined. Try another card; your cart is kept.",
    ),
    (
        "error.payment_gateway_error",
        "決済代行会社でエラーが起きました。請求はされていません。もう一度お試しください。",
        "The payment gateway failed; nothing was charged. Please try again.",
    ),
    (
        "error.cart_empty",
        "カートが空です。",
        "Your cart is empty.",
    ),
    (
        "error.product_not_found",
        "この商品は見つかりません。",
        "This product no longer exists.",
    ),
    (
        "error.validation_failed",
        "入力内容を確認してください。",
        "Please check what you entered.",
    ),
    (
        "error.unauthorized",
        "ログインしてください。",
        "Please sign in.",
    ),
    (
        "error.seat_unavailable",
        "この席はたった今ほかの方に取られました。",
        "This seat was just taken.",
    ),
    (
        "error.reservation_expired",
        "確保の期限が切れました。",
        "The hold has expired.",
    ),
    (
        "error.insufficient_balance",
        "ウォレットの残高が足りません。",
        "The wallet balance is too low.",
    ),
    (
        "error.rate_limited",
        "少し待ってからお試しください。",
        "Please wait a moment and try again.",
    ),
    ("nav.events", "コンサート", "Concerts"),
    ("nav.tickets", "マイチケット", "My tickets"),
    ("nav.staff", "スタッフ", "Staff"),
    ("events.title", "コンサート", "Concerts"),
    (
        "events.back",
        "コンサート一覧へ戻る",
        "Back to the concerts",
    ),
    (
        "events.sign_in",
        "ログインして列に並ぶ",
        "Sign in to join the queue",
    ),
    ("events.join", "待機列に並ぶ", "Join the queue"),
    ("events.waiting", "待機中です", "You are in the queue"),
    (
        "events.waiting_hint",
        "このページを開いたままにしてください。順番が来たら自動で進みます。",
        "Keep this page open: it moves on by itself when it is your turn.",
    ),
    (
        "events.pick",
        "席を選んでください (4席まで)",
        "Pick your seats (up to 4)",
    ),
    (
        "events.access_left",
        "購入できる残り時間",
        "Time left to buy",
    ),
    ("events.picked", "選択中", "Picked"),
    ("events.hold", "この席を確保する", "Hold these seats"),
    ("events.held", "席を確保しました", "Your seats are held"),
    ("events.hold_left", "確保の残り時間", "Hold ends in"),
    ("events.wallet", "ウォレット残高", "Wallet balance"),
    (
        "events.charge_amount",
        "チャージ額 (円)",
        "Amount to add (yen)",
    ),
    ("events.charge", "チャージする", "Add to the wallet"),
    (
        "events.pay_wallet",
        "ウォレットで支払う",
        "Pay from the wallet",
    ),
    ("events.pay_card", "カードで支払う", "Pay by card"),
    ("tickets.title", "マイチケット", "My tickets"),
    ("staff.title", "スタッフ", "Staff"),
    ("staff.products", "商品と在庫", "Products and stock"),
    ("staff.events", "イベント作成", "Events"),
    ("staff.new_event", "新しいイベント", "New event"),
    (
        "staff.consumers",
        "コンシューマーとデッドレター",
        "Consumers and dead letters",
    ),
    ("staff.dead_letters", "デッドレター", "Dead letters"),
    ("staff.invoices", "請求書", "Invoices"),
    ("staff.mails", "送信メール", "Sent mails"),
    ("staff.gate", "入場ゲート", "Ticket gate"),
    ("staff.name", "名前", "Name"),
    ("staff.price", "価格 (円)", "Price (yen)"),
    ("staff.stock", "在庫", "Stock"),
    ("staff.create", "作成する", "Create"),
    ("staff.starts_at", "開演", "Starts at"),
    (
        "staff.sale_starts_at",
        "販売開始 (空欄ならすぐ)",
        "Sale opens (empty: at once)",
    ),
    ("staff.sections", "セクション", "Sections"),
    ("staff.add_section", "セクションを追加", "Add a section"),
    ("staff.payload", "QRコードの内容", "QR code payload"),
    (
        "staff.verify",
        "確認して入場済みにする",
        "Verify and mark used",
    ),
    ("js.seats_count", "{n} 席", "{n} seats"),
    (
        "js.queue.position",
        "あなたは {n} 番目です",
        "You are number {n} in line",
    ),
    ("js.queue.soon", "まもなくです", "Almost there"),
    (
        "js.queue.wait",
        "待ち時間の目安: 約 {n} 分",
        "Estimated wait: about {n} min",
    ),
    (
        "js.queue.expired",
        "待機列の順番が切れました。もう一度並んでください。",
        "Your place in the queue has lapsed; please join again.",
    ),
    (
        "js.access_over",
        "購入できる時間が終わりました。もう一度並んでください。",
        "Your time to buy is over; please join the queue again.",
    ),
    (
        "js.chosen",
        "{n} / {max} 席を選択中",
        "{n} of {max} seats picked",
    ),
    ("js.row", "{row}列", "Row {row}"),
    (
        "js.seat_label",
        "{section} {row}列 {number}番 {price} {status}",
        "{section} row {row} seat {number}, {price}, {status}",
    ),
    (
        "js.seat_name",
        "{section} {row}列 {number}番",
        "{section} row {row}, seat {number}",
    ),
    ("js.seat.available", "空席", "available"),
    ("js.seat.held", "確保中", "held"),
    ("js.seat.sold", "売約済み", "sold"),
    ("js.ticket.valid", "有効", "Valid"),
    ("js.ticket.used", "入場済み", "Used"),
    (
        "js.no_tickets",
        "まだチケットはありません。",
        "No tickets yet.",
    ),
    ("js.qr_alt", "入場用QRコード", "QR code for the gate"),
    (
        "js.qr_payload",
        "QRコードの内容 (ゲート確認用)",
        "QR payload (for the gate)",
    ),
    (
        "js.gate.ok",
        "有効です: {seat}。入場済みにしました。",
        "Valid: {seat}. Marked as used.",
    ),
    (
        "js.gate.used",
        "入場済みのチケットです: {seat}",
        "Already used: {seat}",
    ),
    (
        "js.gate.invalid",
        "無効なチケットです。",
        "Not a valid ticket.",
    ),
    ("js.staff.name", "名前", "Name"),
    ("js.staff.price", "価格", "Price"),
    ("js.staff.stock", "在庫", "Stock"),
    ("js.staff.save", "保存", "Save"),
    ("js.staff.saved", "保存しました。", "Saved."),
    ("js.staff.section", "名前", "Name"),
    ("js.staff.rows", "列数", "Rows"),
    ("js.staff.seats_per_row", "1列の席数", "Seats per row"),
    ("js.staff.topic", "トピック", "Topic"),
    ("js.staff.group", "グループ", "Group"),
    ("js.staff.processed", "処理済み", "Processed"),
    ("js.staff.failed", "失敗", "Failed"),
    ("js.staff.dead", "デッド", "Dead"),
    ("js.staff.lag", "遅れ", "Lag"),
    (
        "js.staff.no_dead",
        "デッドレターはありません。",
        "No dead letters.",
    ),
    ("js.staff.retry", "再試行", "Retry"),
    ("js.staff.delete", "削除", "Delete"),
    ("js.staff.attempts", "{n} 回試行", "{n} attempts"),
    ("js.staff.payload", "ペイロード", "Payload"),
    ("js.staff.to", "宛先", "To"),
    ("js.staff.subject", "件名", "Subject"),
    (
        "error.sale_closed",
        "販売は終了しています。",
        "The sale is over.",
    ),
    (
        "error.access_token_invalid",
        "購入できる時間が終わりました。もう一度並んでください。",
        "Your time to buy is over; please join the queue again.",
    ),
    (
        "error.not_admitted",
        "まだ順番待ちです。",
        "You are still waiting in the queue.",
    ),
    (
        "error.hold_limit_reached",
        "すでに席を確保しています。支払うか取り消してください。",
        "You already hold seats; pay or cancel first.",
    ),
    (
        "error.already_paid",
        "支払い済みです。",
        "This is already paid.",
    ),
    (
        "error.forbidden",
        "この操作はできません。",
        "You may not do this.",
    ),
    (
        "error.sku_taken",
        "このSKUはすでに使われています。",
        "This SKU is taken.",
    ),
    (
        "error.queue_unavailable",
        "待機列が一時的に使えません。少し待ってからお試しください。",
        "The queue is unavailable; try again shortly.",
    ),
    ("error.not_found", "見つかりません。", "Not found."),
    (
        "error.unknown",
        "問題が起きました。もう一度お試しください。",
        "Something went wrong. Please try again.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::of(&headers), Lang::Ja);
        headers.insert(
            "accept-language",
            "fr;q=1, en-GB;q=0.8, ja;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::of(&headers), Lang::En);
        headers.insert("cookie", "x=1; matsuri_lang=ja".parse().unwrap());
        assert_eq!(Lang::of(&headers), Lang::Ja);
    }

    #[test]
    fn yen_is_grouped() {
        assert_eq!(yen(3_500), "¥3,500");
        assert_eq!(yen(0), "¥0");
        assert_eq!(yen(1_234_567), "¥1,234,567");
        assert_eq!(yen(-500), "-¥500");
    }

    /// The keys a template (`t("…")`) or a script (`t('…'`) names; keys built at run time
    /// (`t(`js.seat.${…}`)`) are left to the journeys.
    fn keys_named_in(source: &str) -> Vec<&str> {
        let mut keys = Vec::new();
        for quote in ["t(\"", "t('"] {
            let close = if quote.ends_with('"') { '"' } else { '\'' };
            let mut rest = source;
            while let Some(at) = rest.find(quote) {
                // `t(` itself, not the end of another name (`act('POST'`).
                let own = !rest[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                rest = &rest[at + quote.len()..];
                if let (true, Some(end)) = (own, rest.find(close)) {
                    keys.push(&rest[..end]);
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_the_pages_name_has_a_text() {
        let sources = [
            include_str!("../templates/base.html"),
            include_str!("../templates/shop.html"),
            include_str!("../templates/tickets.html"),
            include_str!("../templates/staff.html"),
            include_str!("../templates/login.html"),
            include_str!("../templates/register.html"),
            include_str!("../assets/js/app.js"),
            include_str!("../assets/js/shop.js"),
            include_str!("../assets/js/tickets.js"),
            include_str!("../assets/js/staff.js"),
            include_str!("../assets/js/inventory.js"),
            include_str!("../assets/js/recs.js"),
            include_str!("../templates/chat.html"),
            include_str!("../assets/js/chat.js"),
            include_str!("../assets/js/push.js"),
            include_str!("../assets/js/realtime.js"),
            include_str!("../templates/social.html"),
            include_str!("../assets/js/social.js"),
            include_str!("../templates/live.html"),
            include_str!("../assets/js/live.js"),
            include_str!("../assets/js/live-rooms.js"),
            include_str!("../assets/js/live-room.js"),
            include_str!("../assets/js/live-archive.js"),
            include_str!("../assets/js/live-moderation.js"),
            include_str!("../templates/images.html"),
            include_str!("../assets/js/images.js"),
            include_str!("../assets/js/upload.js"),
        ];
        let keys: Vec<&str> = sources.iter().flat_map(|s| keys_named_in(s)).collect();
        assert!(keys.len() > 100, "{keys:?}");
        for key in keys {
            assert!(
                all_texts().any(|(k, _, _)| *k == key),
                "no text for {key:?}"
            );
        }
    }

    #[test]
    fn every_text_has_both_languages_once() {
        let mut keys = std::collections::HashSet::new();
        for (key, ja, en) in all_texts() {
            assert!(keys.insert(key), "{key} twice");
            assert!(!ja.is_empty() && !en.is_empty(), "{key}");
        }
    }
}
