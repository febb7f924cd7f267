//! The in-process backend. Time to live follows the injected clock, so tests expire keys
//! by moving the clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use matsuri_core::SharedClock;
use matsuri_core::clock::Millis;

use crate::allocation::MemoryAllocations;
use crate::ranked::RankedSet;
use crate::{Allocation, Coord, Taken, Window};

/// A member's score by name, and the members in score order; the methods keep the two
/// in step.
#[derive(Default)]
struct SortedSet {
    scores: HashMap<String, i64>,
    order: RankedSet,
}

impl SortedSet {
    /// Gives the member this score, adding it if new.
    fn set(&mut self, member: &str, score: i64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(old, member.to_owned()));
        }
        self.order.insert((score, member.to_owned()));
    }

    /// Takes the member out; true when it was there.
    fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(score, member.to_owned()));
                true
            }
            None => false,
        }
    }

    /// Takes out the member with the lowest score.
    fn pop_first(&mut self) -> Option<(i64, String)> {
        let (score, member) = self.order.pop_first()?;
        self.scores.remove(&member);
        Some((score, member))
    }
}

enum Value {
    Text(String),
    Sorted(SortedSet),
}

struct Entry {
    value: Value,
    expires_at: Option<Millis>,
}

pub struct MemoryCoord {
    clock: SharedClock,
    entries: Mutex<HashMap<String, Entry>>,
    allocations: MemoryAllocations,
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl MemoryCoord {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
            allocations: MemoryAllocations::default(),
        }
    }

    /// Runs `f` on the live entries (expired ones dropped first) under the lock.
    fn with<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut HashMap<String, Entry>, Millis) -> T,
    ) -> anyhow::Result<T> {
        let now = self.clock.now_ms();
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("the coordination store lock is poisoned"))?;
        if entries
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|at| at <= now))
        {
            entries.remove(key);
        }
        Ok(f(&mut entries, now))
    }

    /// [`Self::with`] for several keys at once.
    fn with_all<T>(
        &self,
        keys: &[String],
        f: impl FnOnce(&mut HashMap<String, Entry>, Millis) -> T,
    ) -> anyhow::Result<T> {
        let now = self.clock.now_ms();
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("the coordination store lock is poisoned"))?;
        for key in keys {
            if entries
                .get(key)
                .is_some_and(|e| e.expires_at.is_some_and(|at| at <= now))
            {
                entries.remove(key);
            }
        }
        Ok(f(&mut entries, now))
    }
}

fn sorted<'a>(
    entries: &'a mut HashMap<String, Entry>,
    key: &str,
) -> anyhow::Result<&'a mut SortedSet> {
    let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
        value: Value::Sorted(SortedSet::default()),
        expires_at: None,
    });
    match &mut entry.value {
        Value::Sorted(set) => Ok(set),
        Value::Text(_) => anyhow::bail!("{key} does not hold a sorted set"),
    }
}

#[async_trait::async_trait]
impl Coord for MemoryCoord {
    async fn ping(&self) -> anyhow::Result<()> {
        self.with("", |_, _| ())
    }

    async fn zadd_nx(&self, key: &str, member: &str, score: i64) -> anyhow::Result<bool> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            if set.scores.contains_key(member) {
                return Ok(false);
            }
            set.set(member, score);
            Ok(true)
        })?
    }

    async fn zrank(&self, key: &str, member: &str) -> anyhow::Result<Option<u64>> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            let Some(score) = set.scores.get(member) else {
                return Ok(None);
            };
            let rank = set.order.rank(&(*score, member.to_owned()));
            Ok(Some(u64::try_from(rank)?))
        })?
    }

    async fn zcard(&self, key: &str) -> anyhow::Result<u64> {
        self.with(key, |entries, _| {
            Ok(u64::try_from(sorted(entries, key)?.order.len())?)
        })?
    }

    async fn zpopmin(&self, key: &str, count: usize) -> anyhow::Result<Vec<(String, i64)>> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            let mut out = Vec::with_capacity(count.min(set.order.len()));
            while out.len() < count {
                let Some((score, member)) = set.pop_first() else {
                    break;
                };
                out.push((member, score));
            }
            Ok(out)
        })?
    }

    async fn zrem(&self, key: &str, member: &str) -> anyhow::Result<bool> {
        self.with(key, |entries, _| Ok(sorted(entries, key)?.remove(member)))?
    }

    async fn zadd_many(&self, key: &str, members: &[(String, i64)]) -> anyhow::Result<()> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            for (member, score) in members {
                set.set(member, *score);
            }
            Ok(())
        })?
    }

    async fn zrange_head(&self, key: &str, count: usize) -> anyhow::Result<Vec<String>> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            Ok(set
                .order
                .iter()
                .take(count)
                .map(|(_, member)| member.clone())
                .collect())
        })?
    }

    async fn zrem_many(&self, key: &str, members: &[String]) -> anyhow::Result<u64> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            Ok(members.iter().filter(|member| set.remove(member)).count() as u64)
        })?
    }

    async fn zrem_up_to(&self, key: &str, max_score: i64) -> anyhow::Result<u64> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            let mut removed = 0;
            while set
                .order
                .first()
                .is_some_and(|(score, _)| *score <= max_score)
            {
                set.pop_first();
                removed += 1;
            }
            Ok(removed)
        })?
    }

    async fn zadd_each(
        &self,
        keys: &[String],
        member: &str,
        score: i64,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        self.with_all(keys, |entries, now| {
            for key in keys {
                sorted(entries, key)?.set(member, score);
                if let Some(entry) = entries.get_mut(key) {
                    entry.expires_at = Some(now.saturating_add(ttl_ms(ttl)));
                }
            }
            Ok(())
        })?
    }

    async fn zmax_each(&self, keys: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        self.with_all(keys, |entries, _| {
            Ok(keys
                .iter()
                .map(|key| match entries.get(key).map(|e| &e.value) {
                    Some(Value::Sorted(set)) => set.order.last().map(|(score, _)| *score),
                    _ => None,
                })
                .collect())
        })?
    }

    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<bool> {
        self.with(key, |entries, now| {
            if entries.contains_key(key) {
                return false;
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    value: Value::Text(value.to_owned()),
                    expires_at: Some(now.saturating_add(ttl_ms(ttl))),
                },
            );
            true
        })
    }

    async fn set_many(&self, pairs: &[(String, String)], ttl: Duration) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("the coordination store lock is poisoned"))?;
        for (key, value) in pairs {
            entries.insert(
                key.clone(),
                Entry {
                    value: Value::Text(value.clone()),
                    expires_at: Some(now.saturating_add(ttl_ms(ttl))),
                },
            );
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.with(key, |entries, _| match entries.get(key).map(|e| &e.value) {
            Some(Value::Text(text)) => Ok(Some(text.clone())),
            Some(Value::Sorted(_)) => anyhow::bail!("{key} holds a sorted set"),
            None => Ok(None),
        })?
    }

    async fn del(&self, key: &str) -> anyhow::Result<bool> {
        self.with(key, |entries, _| entries.remove(key).is_some())
    }

    async fn incr_by(&self, key: &str, delta: i64) -> anyhow::Result<i64> {
        self.with(key, |entries, _| {
            let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
                value: Value::Text("0".into()),
                expires_at: None,
            });
            let Value::Text(text) = &mut entry.value else {
                anyhow::bail!("{key} holds a sorted set");
            };
            let current: i64 = text
                .parse()
                .map_err(|_| anyhow::anyhow!("{key} is not a counter"))?;
            let next = current
                .checked_add(delta)
                .ok_or_else(|| anyhow::anyhow!("{key} would overflow"))?;
            *text = next.to_string();
            Ok(next)
        })?
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        self.with(key, |entries, now| {
            entries
                .get(key)
                .and_then(|e| e.expires_at)
                .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
        })
    }

    async fn zincr(&self, key: &str, member: &str, delta: i64) -> anyhow::Result<i64> {
        self.with(key, |entries, _| {
            let set = sorted(entries, key)?;
            let score = set
                .scores
                .get(member)
                .copied()
                .unwrap_or(0)
                .checked_add(delta)
                .ok_or_else(|| anyhow::anyhow!("{key} would overflow"))?;
            set.set(member, score);
            Ok(score)
        })?
    }

    async fn take_slots(
        &self,
        windows: &[Window],
        member: &str,
        now: Millis,
    ) -> anyhow::Result<Result<(), Duration>> {
        let keys: Vec<String> = windows.iter().map(|w| w.key.clone()).collect();
        self.with_all(&keys, |entries, clock_now| {
            let mut wait = 0_i64;
            for window in windows {
                let length = ttl_ms(window.length);
                let set = sorted(entries, &window.key)?;
                while set
                    .order
                    .first()
                    .is_some_and(|(at, _)| *at <= now.saturating_sub(length))
                {
                    set.pop_first();
                }
                let taken = set.order.len();
                let limit = usize::try_from(window.limit).unwrap_or(usize::MAX);
                if limit == 0 {
                    wait = wait.max(length);
                } else if taken >= limit {
                    // Room comes back when the slot that keeps it full leaves.
                    let oldest = set
                        .order
                        .iter()
                        .nth(taken - limit)
                        .map_or(now, |(at, _)| *at);
                    wait = wait.max(oldest.saturating_add(length).saturating_sub(now));
                }
            }
            if wait > 0 {
                return Ok(Err(Duration::from_millis(
                    u64::try_from(wait).unwrap_or(u64::MAX),
                )));
            }
            for window in windows {
                sorted(entries, &window.key)?.set(member, now);
                // Keys expire on this store's clock, as Redis's do on its own.
                if let Some(entry) = entries.get_mut(&window.key) {
                    entry.expires_at = Some(clock_now.saturating_add(ttl_ms(window.length)));
                }
            }
            Ok(Ok(()))
        })?
    }

    async fn alloc_take(
        &self,
        order: &str,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> anyhow::Result<Taken> {
        let now = self.clock.now_ms();
        self.allocations
            .take(order, lines, now.saturating_add(ttl_ms(ttl)), now)
    }

    async fn alloc_give_back(&self, order: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.allocations.give_back(order, self.clock.now_ms())
    }

    async fn alloc_counts(&self, items: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        self.allocations.counts(items)
    }

    async fn alloc_state(&self, item: &str) -> anyhow::Result<Option<Allocation>> {
        self.allocations.state(item, self.clock.now_ms())
    }

    async fn alloc_open(&self, item: &str) -> anyhow::Result<Vec<String>> {
        self.allocations.open(item, self.clock.now_ms())
    }

    async fn alloc_sync(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
    ) -> anyhow::Result<Option<Allocation>> {
        self.allocations
            .sync(item, net, known, only_absent, self.clock.now_ms())
    }
}
