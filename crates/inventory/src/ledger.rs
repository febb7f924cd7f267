//! Net stock from the ledger, as seed 002 defines it, for the store that feeds the shop:
//! the book stock of the latest day counted, less the sales and plus the purchases from
//! that day on, less the units held out of sale and the orders paid and not yet shipped.
//! An order shipped from that day on counts as sold (the count before it still held it).

use std::collections::HashMap;

use serde::Serialize;

use matsuri_db::Db;

/// The terms of one SKU's net stock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub book: i64,
    pub sold: i64,
    pub purchased: i64,
    pub samples: i64,
    pub unshipped: i64,
}

impl Figures {
    pub fn net(&self) -> i64 {
        self.book - self.sold + self.purchased - self.samples - self.unshipped
    }
}

/// The figures of every SKU in `skus` (all known SKUs when `None`), read in the order
/// the sync needs: callers read what the ledger knows of open orders before this.
pub async fn figures(
    db: &Db,
    store: &str,
    skus: Option<&[String]>,
) -> Result<HashMap<String, Figures>, sqlx::Error> {
    let (filter, first) = match skus {
        Some([]) => return Ok(HashMap::new()),
        Some(list) => (
            format!(
                " AND i.sku IN ({})",
                matsuri_db::parameter_list(2, list.len())
            ),
            list,
        ),
        None => (String::new(), &[][..]),
    };
    // One row per SKU: its latest count, the moves since, what is held out, and its
    // orders still open or shipped since the count.
    let sql = format!(
        "WITH latest AS ( \
           SELECT b.sku, b.quantity, b.day_start FROM inventory_book b \
           WHERE b.store = $1 AND b.day = (SELECT MAX(m.day) FROM inventory_book m \
             WHERE m.store = b.store AND m.sku = b.sku)) \
         SELECT i.sku, \
           CAST(COALESCE(l.quantity, 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(v.quantity) FROM inventory_moves v WHERE v.store = $1 \
             AND v.sku = i.sku AND v.kind = 'sale' AND v.at >= COALESCE(l.day_start, 0)), 0) \
           + COALESCE((SELECT SUM(o.quantity) FROM inventory_orders o WHERE o.sku = i.sku \
             AND o.shipped_at >= COALESCE(l.day_start, 0)), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(v.quantity) FROM inventory_moves v WHERE v.store = $1 \
             AND v.sku = i.sku AND v.kind = 'purchase' AND v.at >= COALESCE(l.day_start, 0)), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(a.quantity) FROM inventory_adjustments a WHERE a.store = $1 \
             AND a.sku = i.sku), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(o.quantity) FROM inventory_orders o WHERE o.sku = i.sku \
             AND o.shipped_at IS NULL AND o.cancelled_at IS NULL), 0) AS BIGINT) \
         FROM inventory_items i LEFT JOIN latest l ON l.sku = i.sku WHERE 1 = 1{filter}"
    );
    let mut query =
        sqlx::query_as::<_, (String, i64, i64, i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(store);
    for sku in first {
        query = query.bind(sku);
    }
    let rows = query.fetch_all(db.reader()).await?;
    Ok(rows
        .into_iter()
        .map(|(sku, book, sold, purchased, samples, unshipped)| {
            (
                sku,
                Figures {
                    book,
                    sold,
                    purchased,
                    samples,
                    unshipped,
                },
            )
        })
        .collect())
}

/// The prefix of the allocation store's entries that hold units granted to a channel,
/// followed by the adjustment's id.
pub const GRANT_PREFIX: &str = "grant:";

/// Which of `orders` (entries with a delta on the SKU) the ledger has recorded: own orders
/// it holds as paid, and grants to channels whose adjustment it counts in `granted`.
pub async fn known_orders(
    db: &Db,
    sku: &str,
    orders: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let (grants, own): (Vec<&String>, Vec<&String>) =
        orders.iter().partition(|o| o.starts_with(GRANT_PREFIX));
    let own: Vec<&str> = own.into_iter().map(String::as_str).collect();
    let grants: Vec<&str> = grants
        .into_iter()
        .map(|g| g.trim_start_matches(GRANT_PREFIX))
        .collect();
    let mut known = texts_in(
        db,
        "SELECT reference FROM inventory_orders WHERE channel = 'own' AND sku = $1 AND reference",
        sku,
        &own,
    )
    .await?;
    known.extend(
        texts_in(
            db,
            "SELECT id FROM inventory_channel_pushes WHERE sku = $1 AND id",
            sku,
            &grants,
        )
        .await?
        .into_iter()
        .map(|id| format!("{GRANT_PREFIX}{id}")),
    );
    Ok(known)
}

/// The one text column `head` selects, with `sku` as `$1` and `head` ending where `IN (…)`
/// over `values` goes; a statement per chunk of values.
async fn texts_in(
    db: &Db,
    head: &str,
    sku: &str,
    values: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let mut found = Vec::new();
    let per_statement = matsuri_db::rows_per_statement(1).saturating_sub(1).max(1);
    for chunk in values.chunks(per_statement) {
        let sql = format!("{head} IN ({})", matsuri_db::parameter_list(2, chunk.len()));
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(sku);
        for value in chunk {
            query = query.bind(*value);
        }
        found.extend(query.fetch_all(db.reader()).await?);
    }
    Ok(found)
}

/// The units granted to channels per SKU, over every channel.
pub async fn granted(db: &Db, skus: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
    per_sku(
        db,
        "SELECT sku, CAST(SUM(granted) AS BIGINT) FROM inventory_channel_stock WHERE sku",
        "GROUP BY sku",
        skus,
    )
    .await
}

/// When each SKU's count was last synced, for the SKUs that ever were.
pub async fn synced_at(db: &Db, skus: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
    per_sku(
        db,
        "SELECT sku, synced_at FROM inventory_synced WHERE sku",
        "",
        skus,
    )
    .await
}

/// The `(sku, number)` rows a statement selects for `skus`: `head` ends where
/// `IN (…)` over them goes and `tail` follows it; a statement per chunk of SKUs.
async fn per_sku(
    db: &Db,
    head: &str,
    tail: &str,
    skus: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in skus.chunks(matsuri_db::rows_per_statement(1).max(1)) {
        let sql = format!(
            "{head} IN ({}) {tail}",
            matsuri_db::parameter_list(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
        for sku in chunk {
            query = query.bind(sku);
        }
        found.extend(query.fetch_all(db.reader()).await?);
    }
    Ok(found)
}
