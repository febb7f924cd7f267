//! Best available (api.md, "Tickets, second round"): the first block of `quantity`
//! free seats side by side in one row, in event order (sections as the event lists
//! them, then rows, then seats; the order of `seats.position`), taken by one
//! conditional statement. The statement finds the block and holds it; its `WHERE`
//! holds each seat only if it is still free, so two holds never get one seat. On
//! PostgreSQL, where several lanes write at once, a batch with best-available holds first
//! takes a transaction lock per event, so two lanes never pick the same block; a named
//! seat hold of another lane may still take part of it between the two, and then the
//! part taken goes back and the block is looked for again (a statement that took nothing
//! is tried once more, as it may have lost the whole block).

use matsuri_core::clock::Millis;
use matsuri_db::{Dialect, Tx};

/// Looks for a block again at most this often when another transaction took part of it.
const ATTEMPTS: usize = 4;

/// "Free" for the seats of alias `s`: available, or held by a hold that has ended (`$6`
/// is now).
macro_rules! free {
    ($s:literal) => {
        concat!(
            "(",
            $s,
            ".status = 'available' OR (",
            $s,
            ".status = 'held' AND ",
            $s,
            ".held_until <= $6))"
        )
    };
}

/// `$1` event, `$2` section or '', `$3` quantity, `$4` reservation, `$5` held until,
/// `$6` now. The block starts at the first free seat (in position order) whose next
/// `quantity` positions are free seats of its own row; `status <> 'sold'` lets the scan
/// run on the index of unsold seats.
const TAKE_BLOCK: &str = concat!(
    "WITH start AS (SELECT s.position AS first, s.section AS sec, s.row_no AS row_no \
     FROM seats s WHERE s.event_id = $1 AND s.status <> 'sold' \
     AND ($2 = '' OR s.section = $2) AND ",
    free!("s"),
    " AND (SELECT COUNT(*) FROM seats t WHERE t.event_id = $1 \
     AND t.position >= s.position AND t.position < s.position + $3 \
     AND t.section = s.section AND t.row_no = s.row_no AND ",
    free!("t"),
    ") = $3 ORDER BY s.position LIMIT 1) \
     UPDATE seats SET status = 'held', reservation_id = $4, held_until = $5, updated_at = $6, \
     version = version + 1 \
     WHERE event_id = $1 AND position >= (SELECT first FROM start) \
     AND position < (SELECT first FROM start) + $3 \
     AND section = (SELECT sec FROM start) AND row_no = (SELECT row_no FROM start) AND ",
    free!("seats"),
    " RETURNING id, price, version"
);

/// On PostgreSQL, makes the batch's transaction the only one picking blocks of these
/// events until it ends (locks taken in one order, so two batches cannot wait on each
/// other). SQLite has one writer already.
pub(crate) async fn pick_alone(
    tx: &mut Tx,
    dialect: Dialect,
    mut events: Vec<&str>,
) -> Result<(), sqlx::Error> {
    if dialect != Dialect::Postgres {
        return Ok(());
    }
    events.sort_unstable();
    events.dedup();
    for event_id in events {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A best-available hold, as the batch's transaction takes it.
pub(crate) struct Block<'a> {
    pub event_id: &'a str,
    pub quantity: usize,
    pub section: Option<&'a str>,
    pub reservation_id: &'a str,
    pub held_until: Millis,
}

/// Holds the event's best block of `quantity` seats (of `section` if named) for the
/// reservation, inside the batch's transaction. The seats taken, as `id, price,
/// version`: all `quantity` of them, or none when there is no such block.
pub(crate) async fn take_block(
    tx: &mut Tx,
    dialect: Dialect,
    block: &Block<'_>,
    now: Millis,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let wanted = i64::try_from(block.quantity).unwrap_or(i64::MAX);
    let mut empty_again = matches!(dialect, Dialect::Postgres);
    for _ in 0..ATTEMPTS {
        let got: Vec<(String, i64, i64)> = sqlx::query_as(TAKE_BLOCK)
            .bind(block.event_id)
            .bind(block.section.unwrap_or(""))
            .bind(wanted)
            .bind(block.reservation_id)
            .bind(block.held_until)
            .bind(now)
            .fetch_all(&mut **tx)
            .await?;
        if got.len() == block.quantity {
            return Ok(got);
        }
        if got.is_empty() {
            if !std::mem::take(&mut empty_again) {
                return Ok(got);
            }
            continue;
        }
        crate::holds::release_seats(tx, &[block.reservation_id], now).await?;
    }
    Ok(Vec::new())
}
