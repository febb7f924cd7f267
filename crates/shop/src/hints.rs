//! Stock hints: what this process last read of a product's availability, kept for a
//! moment so a stampede on a sold-out product is refused without a database round trip
//! per attempt. A hint is only ever used to refuse early, never to promise stock, and any
//! increase made by this process clears it at once; an increase made by another node is
//! seen within `FRESH_FOR`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRESH_FOR: Duration = Duration::from_millis(50);

#[derive(Default)]
pub(crate) struct StockHints {
    seen: Mutex<HashMap<String, (i64, Instant)>>,
}

impl StockHints {
    /// The product's last known availability, when fresh and below `wanted`.
    pub(crate) fn short_of(&self, product_id: &str, wanted: i64) -> Option<i64> {
        let seen = self.seen.lock().ok()?;
        let (available, at) = seen.get(product_id)?;
        (at.elapsed() < FRESH_FOR && *available < wanted).then_some(*available)
    }

    pub(crate) fn observe(&self, product_id: &str, available: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(product_id.to_owned(), (available, Instant::now()));
        }
    }

    /// Stock went up: the hint no longer holds.
    pub(crate) fn forget(&self, product_id: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(product_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_refuse_only_while_fresh_and_short() {
        let hints = StockHints::default();
        assert_eq!(hints.short_of("p", 1), None);
        hints.observe("p", 0);
        assert_eq!(hints.short_of("p", 1), Some(0));
        hints.observe("p", 5);
        assert_eq!(hints.short_of("p", 3), None);
        assert_eq!(hints.short_of("p", 6), Some(5));
        hints.forget("p");
        assert_eq!(hints.short_of("p", 6), None);
        hints.observe("p", 0);
        std::thread::sleep(FRESH_FOR + Duration::from_millis(5));
        assert_eq!(hints.short_of("p", 1), None);
    }
}
