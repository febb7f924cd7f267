//! The allocation store (seed 002): per item the count that may still be handed out, and
//! per order a delta entry holding the units that order took. Taking is all lines or none
//! and never below zero, with the delta written in the same step; giving back deletes the
//! delta and adds exactly its units back, so a second give-back finds nothing. A delta
//! lapses after its time to live: its units come back at the next sync, which sets each
//! count from the ledger's net stock less the deltas the ledger does not know yet.
//!
//! This file holds the types and the in-process backend; `allocation_redis.rs` holds the
//! Redis scripts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use matsuri_core::clock::Millis;

/// What a take did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Every line's units are taken and the order's delta written.
    Taken,
    /// The order already holds a delta: nothing more was taken.
    Already,
    /// The line for this item wants more than is left; nothing was taken.
    Short { item: String, left: i64 },
    /// The store holds no count for this item yet; nothing was taken. Sync it and retry.
    Unknown(String),
}

/// An item's count and the units its open deltas hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub allocatable: i64,
    pub reserved: i64,
}

/// One order's delta.
struct Delta {
    lines: Vec<(String, i64)>,
    expires_at: Millis,
}

/// The in-process allocation store, one lock around it all.
#[derive(Default)]
pub(crate) struct MemoryAllocations {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    counts: HashMap<String, i64>,
    deltas: HashMap<String, Delta>,
    /// Per item, the orders whose delta holds a line of it.
    open: HashMap<String, BTreeSet<String>>,
}

impl State {
    fn live_delta(&mut self, order: &str, now: Millis) -> Option<&mut Delta> {
        if self.deltas.get(order).is_some_and(|d| d.expires_at <= now) {
            self.drop_delta(order);
        }
        self.deltas.get_mut(order)
    }

    fn drop_delta(&mut self, order: &str) -> Option<Delta> {
        let delta = self.deltas.remove(order)?;
        for (item, _) in &delta.lines {
            if let Some(orders) = self.open.get_mut(item) {
                orders.remove(order);
            }
        }
        Some(delta)
    }

    fn reserved(&mut self, item: &str, now: Millis) -> i64 {
        let orders: Vec<String> = self
            .open
            .get(item)
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default();
        orders
            .iter()
            .filter_map(|order| {
                let delta = self.live_delta(order, now)?;
                delta
                    .lines
                    .iter()
                    .find(|(i, _)| i == item)
                    .map(|(_, quantity)| *quantity)
            })
            .sum()
    }
}

fn locked(state: &Mutex<State>) -> anyhow::Result<std::sync::MutexGuard<'_, State>> {
    state
        .lock()
        .map_err(|_| anyhow::anyhow!("the allocation store lock is poisoned"))
}

impl MemoryAllocations {
    pub(crate) fn take(
        &self,
        order: &str,
        lines: &[(String, i64)],
        expires_at: Millis,
        now: Millis,
    ) -> anyhow::Result<Taken> {
        let mut state = locked(&self.state)?;
        if state.live_delta(order, now).is_some() {
            return Ok(Taken::Already);
        }
        for (item, wanted) in lines {
            match state.counts.get(item) {
                None => return Ok(Taken::Unknown(item.clone())),
                Some(left) if left < wanted => {
                    return Ok(Taken::Short {
                        item: item.clone(),
                        left: *left,
                    });
                }
                Some(_) => {}
            }
        }
        for (item, wanted) in lines {
            if let Some(count) = state.counts.get_mut(item) {
                *count -= wanted;
            }
            state
                .open
                .entry(item.clone())
                .or_default()
                .insert(order.to_owned());
        }
        state.deltas.insert(
            order.to_owned(),
            Delta {
                lines: lines.to_vec(),
                expires_at,
            },
        );
        Ok(Taken::Taken)
    }

    pub(crate) fn give_back(&self, order: &str, now: Millis) -> anyhow::Result<Vec<(String, i64)>> {
        let mut state = locked(&self.state)?;
        if state.live_delta(order, now).is_none() {
            return Ok(Vec::new());
        }
        let Some(delta) = state.drop_delta(order) else {
            return Ok(Vec::new());
        };
        for (item, quantity) in &delta.lines {
            *state.counts.entry(item.clone()).or_insert(0) += quantity;
        }
        Ok(delta.lines)
    }

    pub(crate) fn counts(&self, items: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        let state = locked(&self.state)?;
        Ok(items.iter().map(|i| state.counts.get(i).copied()).collect())
    }

    pub(crate) fn state(&self, item: &str, now: Millis) -> anyhow::Result<Option<Allocation>> {
        let mut state = locked(&self.state)?;
        let Some(allocatable) = state.counts.get(item).copied() else {
            return Ok(None);
        };
        let reserved = state.reserved(item, now);
        Ok(Some(Allocation {
            allocatable,
            reserved,
        }))
    }

    pub(crate) fn open(&self, item: &str, now: Millis) -> anyhow::Result<Vec<String>> {
        let mut state = locked(&self.state)?;
        let orders: Vec<String> = state
            .open
            .get(item)
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default();
        Ok(orders
            .into_iter()
            .filter(|order| state.live_delta(order, now).is_some())
            .collect())
    }

    pub(crate) fn sync(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
        now: Millis,
    ) -> anyhow::Result<Option<Allocation>> {
        let mut state = locked(&self.state)?;
        if only_absent && state.counts.contains_key(item) {
            return Ok(None);
        }
        for order in known {
            let emptied = match state.live_delta(order, now) {
                Some(delta) => {
                    delta.lines.retain(|(i, _)| i != item);
                    delta.lines.is_empty()
                }
                None => false,
            };
            if let Some(orders) = state.open.get_mut(item) {
                orders.remove(order);
            }
            if emptied {
                state.deltas.remove(order);
            }
        }
        let reserved = state.reserved(item, now);
        let allocatable = net - reserved;
        state.counts.insert(item.to_owned(), allocatable);
        Ok(Some(Allocation {
            allocatable,
            reserved,
        }))
    }
}
