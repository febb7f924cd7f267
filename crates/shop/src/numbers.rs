//! Order numbers `YYYYMMDD-NNNNNN`: unique, rising within a day.
//!
//! `NNNNNN` is a global sequence value minus the first value used that day. The sequence
//! is a real PostgreSQL `SEQUENCE` (no row lock, no waiting), or on SQLite values taken a
//! block at a time before the transaction, and the day's first value is written once per
//! day and then only read (and cached), so no checkout waits on a hot counter row. A
//! number wider than six digits simply grows.

use std::collections::HashMap;
use std::sync::Mutex;

use matsuri_core::clock::Millis;
use matsuri_core::timefmt::yyyymmdd;
use matsuri_db::{Conn, Db};

const SEQUENCE: &str = "order_number_seq";

#[derive(Default)]
pub struct OrderNumbers {
    first_of_day: Mutex<HashMap<String, i64>>,
}

impl OrderNumbers {
    /// The day's first sequence value, recording it if this is the day's first order,
    /// and numbers in hand for [`Self::next`]. Runs outside any transaction so what it
    /// takes is committed before anyone uses it.
    pub async fn prepare_day(&self, db: &Db, now: Millis) -> Result<(String, i64), sqlx::Error> {
        db.prefetch_sequence(SEQUENCE).await?;
        let day = yyyymmdd(now);
        if let Some(first) = self.cached(&day) {
            return Ok((day, first));
        }
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT first_seq FROM order_number_days WHERE day = $1")
                .bind(&day)
                .fetch_optional(db.reader())
                .await?;
        let first = match existing {
            Some(first) => first,
            None => {
                let mut conn = db.writer().acquire().await?;
                let candidate = db.next_in_sequence(&mut conn, SEQUENCE).await?;
                sqlx::query("INSERT INTO order_number_days (day, first_seq) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
                    .bind(&day)
                    .bind(candidate)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query_scalar("SELECT first_seq FROM order_number_days WHERE day = $1")
                    .bind(&day)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        if let Ok(mut cache) = self.first_of_day.lock() {
            cache.retain(|d, _| d >= &day);
            cache.insert(day.clone(), first);
        }
        Ok((day, first))
    }

    fn cached(&self, day: &str) -> Option<i64> {
        self.first_of_day.lock().ok()?.get(day).copied()
    }

    /// The next number of `day`, inside the transaction that creates the order.
    pub async fn next(
        db: &Db,
        conn: &mut Conn,
        day: &str,
        first: i64,
    ) -> Result<String, sqlx::Error> {
        loop {
            let value = db.next_in_sequence(conn, SEQUENCE).await?;
            // The day's first value was drawn to record the day, so numbers start at 1. A
            // value drawn before it (by a node racing across midnight) would come out
            // below 1; draw again, the next one is larger.
            if value > first {
                return Ok(format_number(day, value - first));
            }
        }
    }
}

fn format_number(day: &str, n: i64) -> String {
    format!("{day}-{n:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_zero_padded_and_grow() {
        assert_eq!(format_number("20251105", 123), "20251105-000123");
        assert_eq!(format_number("20251105", 1_234_567), "20251105-1234567");
    }
}
