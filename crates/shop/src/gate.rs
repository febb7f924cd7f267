//! The stock gate: this process's running count of each product's units that no request
//! here has claimed yet, so a stampede is refused from memory and only as many buyers as
//! there are units ever reach the writer.
//!
//! A checkout claims its units here before it writes anything. The claim goes back when
//! the request ends without reserving them, and again when a reserved order's payment
//! fails. The conditional decrement in the database still decides every sale; the gate
//! only turns away attempts it knows cannot win.
//!
//! The gate may count more units than are really free (then the database refuses the
//! extra attempts), never fewer: every change to stock that the gate does not see for
//! itself drops the product's count, and the next checkout reads it afresh. What it
//! cannot see, stock given back by another process, is read afresh after `fresh_for` on
//! the injected clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matsuri_core::SharedClock;
use matsuri_core::clock::Millis;

/// More products than this in the gate and it starts over; every count is read again.
const MAX_PRODUCTS: usize = 10_000;

pub(crate) struct StockGate {
    counts: Mutex<Counts>,
    /// How long a count is trusted, in milliseconds.
    fresh_ms: Millis,
    clock: SharedClock,
}

#[derive(Default)]
struct Counts {
    products: HashMap<String, Count>,
    /// Tells a count apart from the one it replaced, so units claimed from an older count
    /// are not added to a newer one that never took them.
    next_generation: u64,
}

struct Count {
    free: i64,
    generation: u64,
    read_at: Millis,
}

impl Count {
    fn fresh(&self, now: Millis, fresh_ms: Millis) -> bool {
        now.saturating_sub(self.read_at) < fresh_ms
    }
}

/// What the gate says about a wanted quantity.
pub(crate) enum Answer {
    Claimed(Units),
    /// Fewer units than wanted are left; how many.
    Short(i64),
    /// The gate holds no fresh count: read the product's stock and [`StockGate::load`] it.
    Unknown,
}

/// Units of one product taken from a count.
#[derive(Debug, Clone)]
pub(crate) struct Units {
    product_id: String,
    quantity: i64,
    generation: u64,
}

/// Units claimed for a request. Dropped unreserved, they go back to the gate.
pub struct Claim {
    gate: Arc<StockGate>,
    units: Vec<Units>,
}

/// Units a committed order holds; they go back to the gate when its payment fails.
#[derive(Debug, Default)]
pub(crate) struct Held(Vec<Units>);

impl StockGate {
    pub(crate) fn new(fresh_for: Duration, clock: SharedClock) -> Self {
        Self {
            counts: Mutex::new(Counts::default()),
            fresh_ms: Millis::try_from(fresh_for.as_millis()).unwrap_or(Millis::MAX),
            clock,
        }
    }

    pub(crate) fn claim(&self, product_id: &str, wanted: i64) -> Answer {
        let now = self.clock.now_ms();
        let Ok(mut counts) = self.counts.lock() else {
            return Answer::Unknown;
        };
        match counts.products.get_mut(product_id) {
            Some(count) if count.fresh(now, self.fresh_ms) => {
                if count.free < wanted {
                    return Answer::Short(count.free.max(0));
                }
                count.free -= wanted;
                Answer::Claimed(Units {
                    product_id: product_id.to_owned(),
                    quantity: wanted,
                    generation: count.generation,
                })
            }
            _ => Answer::Unknown,
        }
    }

    /// Starts a fresh count from the product's stock as just read, unless another request
    /// has done so meanwhile.
    pub(crate) fn load(&self, product_id: &str, available: i64) {
        let now = self.clock.now_ms();
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if counts
            .products
            .get(product_id)
            .is_some_and(|count| count.fresh(now, self.fresh_ms))
        {
            return;
        }
        if counts.products.len() >= MAX_PRODUCTS {
            counts.products.clear();
        }
        counts.next_generation += 1;
        let generation = counts.next_generation;
        counts.products.insert(
            product_id.to_owned(),
            Count {
                free: available,
                generation,
                read_at: now,
            },
        );
    }

    /// Stock changed in a way the count did not follow: read it again next time.
    pub(crate) fn forget(&self, product_id: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.products.remove(product_id);
        }
    }

    /// Units that were taken from the count come back. Units taken from an older count
    /// are not added to a newer one, which read the stock without them; the newer one
    /// is forgotten instead when `stock_rose` (the database got them back after that read).
    fn give_back(&self, units: &[Units], stock_rose: bool) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        for unit in units {
            match counts.products.get_mut(&unit.product_id) {
                Some(count) if count.generation == unit.generation => {
                    count.free += unit.quantity;
                }
                Some(_) if stock_rose => {
                    counts.products.remove(&unit.product_id);
                }
                _ => {}
            }
        }
    }
}

impl Claim {
    pub(crate) fn new(gate: Arc<StockGate>) -> Self {
        Self {
            gate,
            units: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, units: Units) {
        self.units.push(units);
    }

    /// The order is committed: the units stay taken until its payment fails.
    pub(crate) fn reserved(mut self) -> Held {
        Held(std::mem::take(&mut self.units))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.gate.give_back(&self.units, false);
    }
}

impl Held {
    /// The order's payment failed and its stock went back to the database.
    pub(crate) fn release(self, gate: &StockGate) {
        gate.give_back(&self.0, true);
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("units", &self.units).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Arc<StockGate> {
        let clock: SharedClock = Arc::new(matsuri_core::ManualClock::new(0));
        Arc::new(StockGate::new(Duration::from_secs(60), clock))
    }

    fn take(gate: &Arc<StockGate>, product: &str, wanted: i64) -> Claim {
        let mut claim = Claim::new(gate.clone());
        match gate.claim(product, wanted) {
            Answer::Claimed(units) => claim.add(units),
            Answer::Short(left) => panic!("short: {left} left"),
            Answer::Unknown => panic!("no count"),
        }
        claim
    }

    fn free(gate: &StockGate, product: &str) -> Option<i64> {
        match gate.claim(product, i64::MAX) {
            Answer::Short(left) => Some(left),
            _ => None,
        }
    }

    #[test]
    fn units_come_back_when_a_claim_ends_unreserved_or_its_payment_fails() {
        let gate = gate();
        assert!(matches!(gate.claim("p", 1), Answer::Unknown));
        gate.load("p", 3);
        let first = take(&gate, "p", 2);
        assert!(matches!(gate.claim("p", 2), Answer::Short(1)));
        drop(first);
        assert_eq!(free(&gate, "p"), Some(3));
        let held = take(&gate, "p", 3).reserved();
        assert_eq!(free(&gate, "p"), Some(0));
        held.release(&gate);
        assert_eq!(free(&gate, "p"), Some(3));
    }

    #[test]
    fn a_newer_count_never_gets_units_it_did_not_give() {
        let gate = gate();
        gate.load("p", 5);
        let claim = take(&gate, "p", 2);
        let held = take(&gate, "p", 1).reserved();
        gate.forget("p");
        gate.load("p", 4);
        drop(claim);
        assert_eq!(free(&gate, "p"), Some(4));
        // The database got the held unit back after the newer count read it.
        held.release(&gate);
        assert!(matches!(gate.claim("p", 1), Answer::Unknown));
    }

    #[test]
    fn a_count_is_read_again_once_stale() {
        let clock = Arc::new(matsuri_core::ManualClock::new(1_000));
        let gate = Arc::new(StockGate::new(Duration::from_millis(20), clock.clone()));
        gate.load("p", 1);
        gate.load("p", 9);
        assert_eq!(free(&gate, "p"), Some(1));
        clock.advance(Duration::from_millis(19));
        assert_eq!(free(&gate, "p"), Some(1), "still fresh");
        clock.advance(Duration::from_millis(1));
        assert!(matches!(gate.claim("p", 1), Answer::Unknown));
        gate.load("p", 9);
        assert_eq!(free(&gate, "p"), Some(9));
    }
}
