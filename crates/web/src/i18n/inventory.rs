//! The texts of the staff inventory page, beside the main table; looked up with it as
//! one: stock per SKU with the terms of its net, imports and their row errors, flash-sale
//! mode and the reconciliation report.

/// (key, Japanese, English).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("staff.inventory", "在庫台帳", "Inventory"),
    (
        "staff.inventory_formula",
        "ネット在庫 = 帳簿在庫 − 売上 + 仕入 − 見本など − 未出荷。販売可能数は注文が確保中の分を引いた数です。",
        "Net = book − sold + purchased − held out − unshipped. Allocatable is what orders in progress have not taken.",
    ),
    ("staff.import", "CSV 取り込み", "Import a CSV file"),
    ("staff.import_kind", "種類", "Kind"),
    (
        "staff.kind_book",
        "帳簿在庫 (store,sku,quantity,as_of)",
        "Book stock (store,sku,quantity,as_of)",
    ),
    (
        "staff.kind_sales",
        "売上 (store,sku,quantity,at)",
        "Sales (store,sku,quantity,at)",
    ),
    (
        "staff.kind_purchases",
        "仕入 (store,sku,quantity,at)",
        "Purchases (store,sku,quantity,at)",
    ),
    (
        "staff.kind_adjustments",
        "調整 (store,sku,reason,quantity)",
        "Adjustments (store,sku,reason,quantity)",
    ),
    ("staff.import_file", "ファイル", "File"),
    ("staff.import_send", "取り込む", "Import"),
    ("staff.flash_sale", "フラッシュセール", "Flash sale"),
    (
        "staff.flash_sale_hint",
        "オンにすると同期を止め、販売可能数だけで販売します。オフにすると台帳と突き合わせて同期を再開します。",
        "On: the sync stops and checkout sells from the allocation store alone. Off: the store is reconciled with the ledger and the sync resumes.",
    ),
    ("staff.reconciliation", "突き合わせ結果", "Reconciliation"),
    ("js.inventory.book", "帳簿", "Book"),
    ("js.inventory.sold", "売上", "Sold"),
    ("js.inventory.purchased", "仕入", "Purchased"),
    ("js.inventory.samples", "見本など", "Held out"),
    ("js.inventory.unshipped", "未出荷", "Unshipped"),
    ("js.inventory.net", "ネット", "Net"),
    ("js.inventory.allocatable", "販売可能", "Allocatable"),
    ("js.inventory.reserved", "確保中", "Reserved"),
    ("js.inventory.synced", "同期", "Synced"),
    ("js.inventory.ledger", "台帳", "Ledger"),
    ("js.inventory.allocation", "販売可能数", "Allocation store"),
    ("js.inventory.reconciled", "突き合わせ", "Reconciled"),
    (
        "js.inventory.nothing_differed",
        "差異はありませんでした。",
        "Nothing differed.",
    ),
    (
        "js.inventory.imported",
        "{rows} 行を取り込みました。",
        "{rows} rows imported.",
    ),
    (
        "js.inventory.line",
        "{line} 行目: {message}",
        "Line {line}: {message}",
    ),
    (
        "js.inventory.flash_on",
        "フラッシュセール中",
        "Flash sale on",
    ),
    ("js.inventory.flash_off", "通常", "Normal"),
    (
        "js.inventory.turn_on",
        "フラッシュセールを始める",
        "Start the flash sale",
    ),
    (
        "js.inventory.turn_off",
        "フラッシュセールを終える",
        "End the flash sale",
    ),
    (
        "error.invalid_import",
        "ファイルに誤りがあるため、何も取り込んでいません。",
        "The file has errors; nothing was imported.",
    ),
    (
        "error.idempotency_key_reused",
        "同じキーで別の内容が送られました。",
        "This key was used with different content.",
    ),
];
