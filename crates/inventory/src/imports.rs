//! CSV imports into the ledger: book stock, sales, purchases and adjustments (contract
//! "Inventory"). A file is read twice from disk, so memory stays bounded whatever its size:
//! the first pass checks every row (and sums the file's checksum), the second applies
//! them all in one transaction. A file with any bad row is refused with every row's error
//! and changes nothing; the same file again, by `Idempotency-Key` or by checksum, answers
//! the first import and applies nothing.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use matsuri_db::{is_unique_violation, rows_per_statement, value_rows};

use crate::error::{InventoryError, RowError};
use crate::stock::Stock;

/// Most row errors listed in a refusal; the count says how many more there were.
const MAX_LISTED_ERRORS: usize = 1_000;
/// Rows per batch in the applying pass.
const BATCH_ROWS: usize = 2_000;

/// What an import file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Book,
    Sales,
    Purchases,
    Adjustments,
    Shipments,
}

impl Kind {
    pub fn parse(text: &str) -> Result<Self, InventoryError> {
        match text {
            "book" => Ok(Kind::Book),
            "sales" => Ok(Kind::Sales),
            "purchases" => Ok(Kind::Purchases),
            "adjustments" => Ok(Kind::Adjustments),
            "shipments" => Ok(Kind::Shipments),
            other => Err(InventoryError::UnknownKind(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Book => "book",
            Kind::Sales => "sales",
            Kind::Purchases => "purchases",
            Kind::Adjustments => "adjustments",
            Kind::Shipments => "shipments",
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Kind::Book => &["store", "sku", "quantity", "as_of"],
            Kind::Sales | Kind::Purchases => &["store", "sku", "quantity", "at"],
            Kind::Adjustments => &["store", "sku", "reason", "quantity"],
            Kind::Shipments => &["store", "channel", "reference", "shipped_at"],
        }
    }
}

/// An applied import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub import_id: String,
    pub kind: Kind,
    pub rows: u64,
}

/// One checked row.
enum Row {
    Book {
        store: String,
        sku: String,
        day: String,
        day_start: i64,
        quantity: i64,
    },
    Move {
        store: String,
        sku: String,
        kind: &'static str,
        quantity: i64,
        at: i64,
    },
    Adjust {
        store: String,
        sku: String,
        reason: String,
        quantity: i64,
    },
    /// An order of a channel (`own` or a marketplace) shipped: no longer unshipped.
    Ship {
        channel: String,
        reference: String,
        at: i64,
    },
}

/// What the rows are checked against.
struct Known {
    stores: HashSet<String>,
    skus: HashSet<String>,
    channels: HashSet<String>,
}

/// Called with the bytes read so far, for a progress bar.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Sums a reader's bytes into a SHA-256 as they are read.
struct Summing<R> {
    inner: R,
    sum: Sha256,
}

impl<R: Read> Read for Summing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

fn reader(file: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file)
}

fn quantity(text: &str, field: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("{field} must be a whole number, not {text:?}"))
}

fn check_row(kind: Kind, fields: &[&str], known: &Known) -> Result<(Row, Vec<u8>), String> {
    let [store, sku, third, fourth] = fields else {
        return Err(format!(
            "expected {} fields ({}), found {}",
            kind.header().len(),
            kind.header().join(","),
            fields.len()
        ));
    };
    let (store, sku) = (store.trim(), sku.trim());
    if !known.stores.contains(store) {
        return Err(format!("unknown store {store:?}"));
    }
    if kind == Kind::Shipments {
        return check_shipment(sku, third, fourth, known)
            .map(|row| (row, fields.join("\u{0}").into_bytes()));
    }
    if !known.skus.contains(sku) {
        return Err(format!("unknown SKU {sku:?}"));
    }
    let (store, sku) = (store.to_owned(), sku.to_owned());
    match kind {
        Kind::Book => {
            let quantity = quantity(third, "quantity")?;
            if quantity < 0 {
                return Err("book stock cannot be negative".into());
            }
            let day = fourth.trim();
            let day_start = matsuri_core::timefmt::parse_rfc3339(&format!("{day}T00:00:00Z"))
                .filter(|_| day.len() == 10)
                .ok_or_else(|| format!("as_of must be a day like 2026-12-03, not {day:?}"))?;
            let key = format!("{store}\u{0}{sku}\u{0}{day}").into_bytes();
            Ok((
                Row::Book {
                    store,
                    sku,
                    day: day.to_owned(),
                    day_start,
                    quantity,
                },
                key,
            ))
        }
        Kind::Sales | Kind::Purchases => {
            let quantity = quantity(third, "quantity")?;
            if quantity < 0 {
                return Err("quantity cannot be negative".into());
            }
            let at = matsuri_core::timefmt::parse_rfc3339(fourth.trim()).ok_or_else(|| {
                format!("at must be a time like 2026-12-03T10:00:00+09:00, not {fourth:?}")
            })?;
            let key = fields.join("\u{0}").into_bytes();
            Ok((
                Row::Move {
                    store,
                    sku,
                    kind: if kind == Kind::Sales {
                        "sale"
                    } else {
                        "purchase"
                    },
                    quantity,
                    at,
                },
                key,
            ))
        }
        Kind::Shipments => Err("a shipment is checked apart".into()),
        Kind::Adjustments => {
            let reason = third.trim();
            if !["sample", "damaged", "correction"].contains(&reason) {
                return Err(format!(
                    "reason must be sample, damaged or correction, not {reason:?}"
                ));
            }
            let quantity = quantity(fourth, "quantity")?;
            if quantity < 0 && reason != "correction" {
                return Err("only a correction can be negative".into());
            }
            let key = format!("{store}\u{0}{sku}\u{0}{reason}").into_bytes();
            Ok((
                Row::Adjust {
                    store,
                    sku,
                    reason: reason.to_owned(),
                    quantity,
                },
                key,
            ))
        }
    }
}

/// A shipment row: a known channel, an order reference and when it left.
fn check_shipment(channel: &str, reference: &str, at: &str, known: &Known) -> Result<Row, String> {
    if !known.channels.contains(channel) {
        return Err(format!(
            "unknown channel {channel:?}: own or a marketplace's name"
        ));
    }
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > 255 {
        return Err("reference must be the order's id or number, 1 to 255 bytes".into());
    }
    let at = matsuri_core::timefmt::parse_rfc3339(at.trim()).ok_or_else(|| {
        format!("shipped_at must be a time like 2026-12-03T10:00:00+09:00, not {at:?}")
    })?;
    Ok(Row::Ship {
        channel: channel.to_owned(),
        reference: reference.to_owned(),
        at,
    })
}

fn short_hash(key: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Reads the record's fields as text, or says why they are not.
fn fields_of(record: &csv::ByteRecord) -> Result<Vec<&str>, String> {
    record
        .iter()
        .map(|f| std::str::from_utf8(f).map_err(|_| "the line is not UTF-8".to_owned()))
        .collect()
}

/// The first pass: every row checked; the file's checksum and row count, or the errors.
fn check_file(
    path: &Path,
    kind: Kind,
    known: &Known,
    progress: Option<&Progress>,
) -> Result<(String, u64), InventoryError> {
    let file = std::fs::File::open(path)?;
    let mut summing = Summing {
        inner: std::io::BufReader::new(file),
        sum: Sha256::new(),
    };
    let mut errors = Vec::new();
    let mut more_errors = 0_u64;
    let mut push = |line: u64, message: String| {
        if errors.len() < MAX_LISTED_ERRORS {
            errors.push(RowError { line, message });
        } else {
            more_errors += 1;
        }
    };
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let mut rows = 0_u64;
    {
        let mut csv = reader(&mut summing);
        let mut record = csv::ByteRecord::new();
        let mut line = 0_u64;
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    push(line + 1, format!("cannot be read as CSV: {e}"));
                    break;
                }
            }
            line = record.position().map_or(line + 1, csv::Position::line);
            if line.is_multiple_of(10_000)
                && let Some(progress) = progress
            {
                progress(record.position().map_or(0, csv::Position::byte));
            }
            let fields = match fields_of(&record) {
                Ok(fields) => fields,
                Err(message) => {
                    push(line, message);
                    continue;
                }
            };
            if line == 1 {
                if fields
                    .iter()
                    .map(|f| f.trim())
                    .ne(kind.header().iter().copied())
                {
                    push(1, format!("the header must be {}", kind.header().join(",")));
                    break;
                }
                continue;
            }
            rows += 1;
            match check_row(kind, &fields, known) {
                Ok((_, key)) => {
                    if let Some(first) = seen.insert(short_hash(&key), line) {
                        push(line, format!("repeats line {first}"));
                    }
                }
                Err(message) => push(line, message),
            }
        }
        if line == 0 {
            push(
                1,
                format!(
                    "the file is empty; the header must be {}",
                    kind.header().join(",")
                ),
            );
        }
    }
    if more_errors > 0 {
        errors.push(RowError {
            line: 0,
            message: format!("and {more_errors} more rows with errors"),
        });
    }
    if !errors.is_empty() {
        return Err(InventoryError::InvalidImport(errors));
    }
    let digest = summing.sum.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), rows))
}

impl Stock {
    async fn known(&self) -> Result<Known, sqlx::Error> {
        let skus: Vec<String> = sqlx::query_scalar("SELECT sku FROM inventory_items")
            .fetch_all(self.db().reader())
            .await?;
        let mut channels: HashSet<String> =
            sqlx::query_scalar::<_, String>("SELECT name FROM inventory_channels")
                .fetch_all(self.db().reader())
                .await?
                .into_iter()
                .collect();
        channels.insert("own".into());
        Ok(Known {
            stores: self.settings().stores.iter().cloned().collect(),
            skus: skus.into_iter().collect(),
            channels,
        })
    }

    /// The import this file or key made before. A key used before with another file is
    /// refused.
    async fn earlier(
        &self,
        kind: Kind,
        checksum: &str,
        key: Option<&str>,
    ) -> Result<Option<Imported>, InventoryError> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, kind, checksum, row_count FROM inventory_imports \
             WHERE (kind = $1 AND checksum = $2) OR idempotency_key = $3 \
             ORDER BY created_at LIMIT 1",
        )
        .bind(kind.as_str())
        .bind(checksum)
        .bind(key)
        .fetch_optional(self.db().reader())
        .await?;
        let Some((import_id, earlier_kind, earlier_sum, rows)) = row else {
            return Ok(None);
        };
        if earlier_sum != checksum || earlier_kind != kind.as_str() {
            return Err(InventoryError::KeyReused);
        }
        Ok(Some(Imported {
            import_id,
            kind,
            rows: u64::try_from(rows).unwrap_or(0),
        }))
    }

    /// Imports the CSV file at `path`: checked whole, then applied whole, once.
    pub async fn import_file(
        &self,
        kind: Kind,
        path: PathBuf,
        key: Option<&str>,
        progress: Option<Progress>,
    ) -> Result<Imported, InventoryError> {
        let known = self.known().await?;
        let checking = path.clone();
        let pass_progress = progress.clone();
        let (checksum, rows) = tokio::task::spawn_blocking(move || {
            check_file(&checking, kind, &known, pass_progress.as_ref())
        })
        .await
        .map_err(|e| InventoryError::Internal(e.into()))??;
        if let Some(earlier) = self.earlier(kind, &checksum, key).await? {
            return Ok(earlier);
        }
        let import_id = matsuri_core::ids::new_uuid_v7();
        match self
            .apply(kind, &path, &import_id, &checksum, key, rows, progress)
            .await
        {
            Ok(()) => {}
            Err(InventoryError::Internal(e))
                if e.downcast_ref::<sqlx::Error>()
                    .is_some_and(is_unique_violation) =>
            {
                // The same file or key was applied meanwhile.
                if let Some(earlier) = self.earlier(kind, &checksum, key).await? {
                    return Ok(earlier);
                }
                return Err(InventoryError::Internal(e));
            }
            Err(e) => return Err(e),
        }
        tracing::info!(
            import_id,
            kind = kind.as_str(),
            rows,
            "inventory import applied"
        );
        self.sync().await?;
        Ok(Imported {
            import_id,
            kind,
            rows,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        kind: Kind,
        path: &Path,
        import_id: &str,
        checksum: &str,
        key: Option<&str>,
        rows: u64,
        progress: Option<Progress>,
    ) -> Result<(), InventoryError> {
        let known = self.known().await?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        sqlx::query(
            "INSERT INTO inventory_imports (id, kind, checksum, idempotency_key, row_count, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(import_id)
        .bind(kind.as_str())
        .bind(checksum)
        .bind(key)
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut csv = reader(std::io::BufReader::new(std::fs::File::open(path)?));
        let mut record = csv::ByteRecord::new();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut header = true;
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        loop {
            let more = csv
                .read_byte_record(&mut record)
                .map_err(|e| InventoryError::Internal(e.into()))?;
            if more && !header {
                let fields =
                    fields_of(&record).map_err(|m| InventoryError::Internal(anyhow::anyhow!(m)))?;
                let (row, _) = check_row(kind, &fields, &known).map_err(|m| {
                    InventoryError::Internal(anyhow::anyhow!("the file changed: {m}"))
                })?;
                batch.push(row);
                lines.push(record.position().map_or(0, csv::Position::line));
            }
            header = false;
            if batch.len() >= BATCH_ROWS || (!more && !batch.is_empty()) {
                if kind == Kind::Shipments {
                    ship_rows(&mut tx, &batch, &lines, &mut refused).await?;
                    lines.clear();
                } else {
                    write_rows(&mut tx, import_id, &batch, now).await?;
                }
                batch.clear();
                if let Some(progress) = &progress {
                    progress(record.position().map_or(0, csv::Position::byte));
                }
            }
            if !more {
                break;
            }
        }
        if !refused.is_empty() {
            tx.rollback().await?;
            return Err(InventoryError::InvalidImport(refused));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Closes each shipped order's lines; a reference with no order of that channel, or of an
/// order cancelled, refuses the file (the caller rolls it back). An order shipped before
/// stays as it was.
async fn ship_rows(
    tx: &mut matsuri_db::Tx,
    rows: &[Row],
    lines: &[u64],
    refused: &mut Vec<RowError>,
) -> Result<(), sqlx::Error> {
    for (line, row) in lines.iter().copied().zip(rows) {
        let Row::Ship {
            channel,
            reference,
            at,
        } = row
        else {
            continue;
        };
        let (known, cancelled): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(cancelled_at) FROM inventory_orders \
             WHERE channel = $1 AND reference = $2",
        )
        .bind(channel)
        .bind(reference)
        .fetch_one(&mut **tx)
        .await?;
        let refusal = match (known, cancelled) {
            (0, _) => Some(format!("no order {reference:?} of channel {channel:?}")),
            (_, 1..) => Some(format!(
                "order {reference:?} of channel {channel:?} was cancelled"
            )),
            _ => None,
        };
        if let Some(message) = refusal {
            if refused.len() < MAX_LISTED_ERRORS {
                refused.push(RowError { line, message });
            }
            continue;
        }
        // A cancel that commits while this file applies leaves its order unshipped.
        sqlx::query(
            "UPDATE inventory_orders SET shipped_at = $1 WHERE channel = $2 AND reference = $3 \
             AND shipped_at IS NULL AND cancelled_at IS NULL",
        )
        .bind(*at)
        .bind(channel)
        .bind(reference)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_rows(
    tx: &mut matsuri_db::Tx,
    import_id: &str,
    rows: &[Row],
    now: i64,
) -> Result<(), sqlx::Error> {
    let dialect = matsuri_db::Dialect::of(tx);
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let (columns, head, tail) = match first {
        Row::Book { .. } => (
            7,
            "INSERT INTO inventory_book (store, sku, day, day_start, quantity, import_id, updated_at) VALUES ",
            " ON CONFLICT (store, sku, day) DO UPDATE SET quantity = excluded.quantity, \
             import_id = excluded.import_id, updated_at = excluded.updated_at",
        ),
        Row::Move { .. } => (
            7,
            "INSERT INTO inventory_moves (id, import_id, store, sku, kind, quantity, at) VALUES ",
            "",
        ),
        Row::Ship { .. } => return Ok(()),
        Row::Adjust { .. } => (
            6,
            "INSERT INTO inventory_adjustments (store, sku, reason, quantity, import_id, updated_at) VALUES ",
            " ON CONFLICT (store, sku, reason) DO UPDATE SET quantity = excluded.quantity, \
             import_id = excluded.import_id, updated_at = excluded.updated_at",
        ),
    };
    for chunk in rows.chunks(rows_per_statement(columns)) {
        let sql = format!("{head}{}{tail}", value_rows(dialect, chunk.len(), columns));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = match row {
                Row::Book {
                    store,
                    sku,
                    day,
                    day_start,
                    quantity,
                } => query
                    .bind(store)
                    .bind(sku)
                    .bind(day)
                    .bind(*day_start)
                    .bind(*quantity)
                    .bind(import_id)
                    .bind(now),
                Row::Move {
                    store,
                    sku,
                    kind,
                    quantity,
                    at,
                } => query
                    .bind(matsuri_core::ids::new_uuid_v7())
                    .bind(import_id)
                    .bind(store)
                    .bind(sku)
                    .bind(*kind)
                    .bind(*quantity)
                    .bind(*at),
                Row::Adjust {
                    store,
                    sku,
                    reason,
                    quantity,
                } => query
                    .bind(store)
                    .bind(sku)
                    .bind(reason)
                    .bind(*quantity)
                    .bind(import_id)
                    .bind(now),
                Row::Ship { .. } => query,
            };
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
