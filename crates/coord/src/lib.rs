//! The `coord` port: the Redis-shaped coordination primitives the stampede systems need
//! (sorted sets for waiting queues, keys with a time to live for tokens and holds,
//! set-if-absent, counters, and many keys set in one round trip). `memory://` keeps them
//! in this process, on the injected clock; `redis://…` keeps them in Redis, every key under
//! a prefix so deployments and test runs can share a server.

mod allocation;
mod allocation_redis;
mod memory;
mod ranked;
mod redis_backend;

use std::sync::Arc;
use std::time::Duration;

use matsuri_core::SharedClock;
use matsuri_core::clock::Millis;

pub use allocation::{Allocation, Taken};
pub use memory::MemoryCoord;
pub use redis_backend::RedisCoord;

#[async_trait::async_trait]
pub trait Coord: Send + Sync + 'static {
    /// A round trip to the backend.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Adds `member` with `score` unless it is there already; true when added.
    async fn zadd_nx(&self, key: &str, member: &str, score: i64) -> anyhow::Result<bool>;
    /// The member's 0-based rank by score (then member), if present.
    async fn zrank(&self, key: &str, member: &str) -> anyhow::Result<Option<u64>>;
    async fn zcard(&self, key: &str) -> anyhow::Result<u64>;
    /// Removes and returns up to `count` members with the lowest scores, lowest first.
    async fn zpopmin(&self, key: &str, count: usize) -> anyhow::Result<Vec<(String, i64)>>;
    /// True when the member was there.
    async fn zrem(&self, key: &str, member: &str) -> anyhow::Result<bool>;
    /// Adds or updates every member with its score, in one round trip.
    async fn zadd_many(&self, key: &str, members: &[(String, i64)]) -> anyhow::Result<()>;
    /// Up to `count` members with the lowest scores, lowest first, without removing them.
    async fn zrange_head(&self, key: &str, count: usize) -> anyhow::Result<Vec<String>>;
    /// Removes every listed member in one round trip; returns how many were there.
    async fn zrem_many(&self, key: &str, members: &[String]) -> anyhow::Result<u64>;
    /// Removes every member whose score is at most `max_score`; returns how many.
    async fn zrem_up_to(&self, key: &str, max_score: i64) -> anyhow::Result<u64>;
    /// Gives `member` the `score` in each of `keys` and lets each key live `ttl` from
    /// now, in one round trip.
    async fn zadd_each(
        &self,
        keys: &[String],
        member: &str,
        score: i64,
        ttl: Duration,
    ) -> anyhow::Result<()>;
    /// The highest score in each of `keys` (`None` for a missing or empty key), in one
    /// round trip.
    async fn zmax_each(&self, keys: &[String]) -> anyhow::Result<Vec<Option<i64>>>;

    /// Sets `key` to `value` for `ttl` unless it exists; true when set.
    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<bool>;
    /// Sets every key for `ttl`, in one round trip.
    async fn set_many(&self, entries: &[(String, String)], ttl: Duration) -> anyhow::Result<()>;
    async fn get(&self, key: &str) -> anyhow::Result<Option<String>>;
    /// True when the key existed.
    async fn del(&self, key: &str) -> anyhow::Result<bool>;
    /// Adds `delta` to a counter (missing counts as 0) and returns the new value.
    async fn incr_by(&self, key: &str, delta: i64) -> anyhow::Result<i64>;
    /// How long the key has left, or `None` for a missing key or one without a TTL.
    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>>;

    /// Adds `delta` to the member's score (a missing member counts as 0) and returns the
    /// new score.
    async fn zincr(&self, key: &str, member: &str, delta: i64) -> anyhow::Result<i64>;

    /// Takes one slot of each sliding window at `now`, atomically: either every window
    /// had room and `member` is recorded in each, or none changes and the answer is how
    /// long until the fullest one has room again. A window's key holds the times of the
    /// slots taken within it.
    async fn take_slots(
        &self,
        windows: &[Window],
        member: &str,
        now: Millis,
    ) -> anyhow::Result<Result<(), Duration>>;

    /// The allocation store (`allocation.rs`): takes every line's units for `order`, all
    /// or none and never below zero, writing the order's delta with them; the delta
    /// lapses after `ttl`.
    async fn alloc_take(
        &self,
        order: &str,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> anyhow::Result<Taken>;
    /// Deletes the order's delta and adds its units back in the same step; the lines
    /// given back, none when there was no delta (given back before, or lapsed).
    async fn alloc_give_back(&self, order: &str) -> anyhow::Result<Vec<(String, i64)>>;
    /// Each item's count, `None` where the store holds none, in one round trip.
    async fn alloc_counts(&self, items: &[String]) -> anyhow::Result<Vec<Option<i64>>>;
    /// The item's count and the units its live deltas hold.
    async fn alloc_state(&self, item: &str) -> anyhow::Result<Option<Allocation>>;
    /// The orders whose live delta holds a line of `item`.
    async fn alloc_open(&self, item: &str) -> anyhow::Result<Vec<String>>;
    /// Sets the item's count to `net` less what the live deltas of orders outside `known`
    /// hold; the lines of `known` orders (the ledger counts them in `net` already) leave
    /// their deltas. With `only_absent`, changes nothing when a count exists (`None`).
    async fn alloc_sync(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
    ) -> anyhow::Result<Option<Allocation>>;
}

/// A sliding window of [`Coord::take_slots`]: at most `limit` slots within any
/// `length` of time.
#[derive(Debug, Clone)]
pub struct Window {
    pub key: String,
    pub limit: u64,
    pub length: Duration,
}

pub type SharedCoord = Arc<dyn Coord>;

/// Picks the backend from the URL: `memory://` or `redis://…` (`rediss://` for TLS).
pub async fn from_url(url: &str, prefix: &str, clock: SharedClock) -> anyhow::Result<SharedCoord> {
    if url == "memory://" {
        Ok(Arc::new(MemoryCoord::new(clock)))
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(Arc::new(RedisCoord::connect(url, prefix).await?))
    } else {
        anyhow::bail!(
            "unsupported coord URL scheme (expected memory:// or redis://): {}",
            url.split(':').next().unwrap_or_default()
        )
    }
}
