//! The Redis backend: one multiplexed connection (reconnecting on failure); every key is
//! stored as `<prefix>:<key>`.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use matsuri_core::clock::Millis;

use crate::{Allocation, Coord, Taken, Window};

pub struct RedisCoord {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisCoord {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("reading the Redis URL")?;
        // Bounded waits: an unreachable Redis must fail a call quickly, so callers can fall
        // back (token checks go to the database) instead of hanging.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> anyhow::Result<T> {
        let mut conn = self.conn.clone();
        Ok(cmd.query_async(&mut conn).await?)
    }
}

/// [`Coord::take_slots`] as one script, so no other client runs between the check and
/// the take. KEYS: the windows; ARGV: now, the member, then each window's limit and
/// length in milliseconds. Answers 0 when taken, else the milliseconds to wait.
const TAKE_SLOTS: &str = r"
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local length = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - length)
  local taken = redis.call('ZCARD', key)
  if limit == 0 then
    wait = math.max(wait, length)
  elseif taken >= limit then
    local oldest = redis.call('ZRANGE', key, taken - limit, taken - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + length - now)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait::async_trait]
impl Coord for RedisCoord {
    async fn ping(&self) -> anyhow::Result<()> {
        let _: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn zadd_nx(&self, key: &str, member: &str, score: i64) -> anyhow::Result<bool> {
        let added: i64 = self
            .run(
                redis::cmd("ZADD")
                    .arg(self.key(key))
                    .arg("NX")
                    .arg(score)
                    .arg(member),
            )
            .await?;
        Ok(added == 1)
    }

    async fn zrank(&self, key: &str, member: &str) -> anyhow::Result<Option<u64>> {
        self.run(redis::cmd("ZRANK").arg(self.key(key)).arg(member))
            .await
    }

    async fn zcard(&self, key: &str) -> anyhow::Result<u64> {
        self.run(redis::cmd("ZCARD").arg(self.key(key))).await
    }

    async fn zpopmin(&self, key: &str, count: usize) -> anyhow::Result<Vec<(String, i64)>> {
        let popped: Vec<(String, f64)> = self
            .run(redis::cmd("ZPOPMIN").arg(self.key(key)).arg(count))
            .await?;
        // Scores are whole milliseconds, exact in a double up to 2^53.
        #[allow(clippy::cast_possible_truncation)]
        Ok(popped.into_iter().map(|(m, s)| (m, s as i64)).collect())
    }

    async fn zrem(&self, key: &str, member: &str) -> anyhow::Result<bool> {
        let removed: i64 = self
            .run(redis::cmd("ZREM").arg(self.key(key)).arg(member))
            .await?;
        Ok(removed == 1)
    }

    async fn zadd_many(&self, key: &str, members: &[(String, i64)]) -> anyhow::Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.key(key));
        for (member, score) in members {
            cmd.arg(*score).arg(member);
        }
        let _: i64 = self.run(&cmd).await?;
        Ok(())
    }

    async fn zadd_each(
        &self,
        keys: &[String],
        member: &str,
        score: i64,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            let key = self.key(key);
            pipe.cmd("ZADD").arg(&key).arg(score).arg(member).ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn zmax_each(&self, keys: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("ZRANGE")
                .arg(self.key(key))
                .arg(-1)
                .arg(-1)
                .arg("WITHSCORES");
        }
        let mut conn = self.conn.clone();
        let tops: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        Ok(tops
            .into_iter()
            .map(|top| top.first().map(|(_, score)| *score as i64))
            .collect())
    }

    async fn zrange_head(&self, key: &str, count: usize) -> anyhow::Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.run(
            redis::cmd("ZRANGE")
                .arg(self.key(key))
                .arg(0)
                .arg(count.saturating_sub(1)),
        )
        .await
    }

    async fn zrem_many(&self, key: &str, members: &[String]) -> anyhow::Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.run(redis::cmd("ZREM").arg(self.key(key)).arg(members))
            .await
    }

    async fn zrem_up_to(&self, key: &str, max_score: i64) -> anyhow::Result<u64> {
        self.run(
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(self.key(key))
                .arg("-inf")
                .arg(max_score),
        )
        .await
    }

    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<bool> {
        let set: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn set_many(&self, entries: &[(String, String)], ttl: Duration) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.run(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn del(&self, key: &str) -> anyhow::Result<bool> {
        let removed: i64 = self.run(redis::cmd("DEL").arg(self.key(key))).await?;
        Ok(removed == 1)
    }

    async fn incr_by(&self, key: &str, delta: i64) -> anyhow::Result<i64> {
        self.run(redis::cmd("INCRBY").arg(self.key(key)).arg(delta))
            .await
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let ms: i64 = self.run(redis::cmd("PTTL").arg(self.key(key))).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    async fn zincr(&self, key: &str, member: &str, delta: i64) -> anyhow::Result<i64> {
        let score: f64 = self
            .run(
                redis::cmd("ZINCRBY")
                    .arg(self.key(key))
                    .arg(delta)
                    .arg(member),
            )
            .await?;
        Ok(score as i64)
    }

    async fn take_slots(
        &self,
        windows: &[Window],
        member: &str,
        now: Millis,
    ) -> anyhow::Result<Result<(), Duration>> {
        if windows.is_empty() {
            return Ok(Ok(()));
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TAKE_SLOTS).arg(windows.len());
        for window in windows {
            cmd.arg(self.key(&window.key));
        }
        cmd.arg(now).arg(member);
        for window in windows {
            cmd.arg(window.limit).arg(millis(window.length));
        }
        let wait: i64 = self.run(&cmd).await?;
        Ok(if wait > 0 {
            Err(Duration::from_millis(
                u64::try_from(wait).unwrap_or(u64::MAX),
            ))
        } else {
            Ok(())
        })
    }

    async fn alloc_take(
        &self,
        order: &str,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> anyhow::Result<Taken> {
        self.take_allocation(order, lines, ttl).await
    }

    async fn alloc_give_back(&self, order: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.give_back_allocation(order).await
    }

    async fn alloc_counts(&self, items: &[String]) -> anyhow::Result<Vec<Option<i64>>> {
        self.allocation_counts(items).await
    }

    async fn alloc_state(&self, item: &str) -> anyhow::Result<Option<Allocation>> {
        self.allocation_state(item).await
    }

    async fn alloc_open(&self, item: &str) -> anyhow::Result<Vec<String>> {
        self.allocation_open(item).await
    }

    async fn alloc_sync(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
    ) -> anyhow::Result<Option<Allocation>> {
        self.sync_allocation(item, net, known, only_absent).await
    }
}
