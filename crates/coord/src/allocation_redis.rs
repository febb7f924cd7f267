//! The allocation store on Redis: each step one script, so no other client runs between
//! its checks and its writes. Keys under the prefix: `alloc:n:<item>` the count,
//! `alloc:d:<order>` the order's delta (a hash of item → units, expiring), and
//! `alloc:o:<item>` the orders with a delta on the item (a sorted set scored by when the
//! delta lapses, in Redis's own clock). Scripts that reach keys of the delta's items build
//! their names from the prefix, so the store needs one Redis, not a cluster.

use std::time::Duration;

use crate::redis_backend::RedisCoord;
use crate::{Allocation, Taken};

/// Milliseconds now, in Redis's clock.
const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: the delta, then the items' counts, then their open sets. ARGV: the order, the
/// time to live in ms, then item and units per line. Answers {0} taken, {1} already,
/// {2, i} no count for line i, {3, i, left} line i short.
const TAKE: &str = "
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local n = (#KEYS - 1) / 2
for i = 1, n do
  local left = redis.call('GET', KEYS[1 + i])
  if not left then return {2, i} end
  if tonumber(left) < tonumber(ARGV[2 + 2 * i]) then return {3, i, tonumber(left)} end
end
local lapses = now + tonumber(ARGV[2])
for i = 1, n do
  redis.call('DECRBY', KEYS[1 + i], ARGV[2 + 2 * i])
  redis.call('HSET', KEYS[1], ARGV[1 + 2 * i], ARGV[2 + 2 * i])
  redis.call('ZADD', KEYS[1 + n + i], lapses, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {0}
";

/// KEYS: the delta. ARGV: the key prefix, the order. Answers the lines given back as a
/// flat list of item, units.
const GIVE_BACK: &str = "
local lines = redis.call('HGETALL', KEYS[1])
for i = 1, #lines, 2 do
  redis.call('INCRBY', ARGV[1] .. 'alloc:n:' .. lines[i], lines[i + 1])
  redis.call('ZREM', ARGV[1] .. 'alloc:o:' .. lines[i], ARGV[2])
end
redis.call('DEL', KEYS[1])
return lines
";

/// Sums the units of `item`'s live deltas into `reserved`, dropping lapsed orders from the
/// open set. Expects KEYS[2] the open set, ARGV[1] the prefix, ARGV[2] the item.
const RESERVED: &str = "
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local reserved = 0
for _, order in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local units = redis.call('HGET', ARGV[1] .. 'alloc:d:' .. order, ARGV[2])
  if units then
    reserved = reserved + tonumber(units)
  else
    redis.call('ZREM', KEYS[2], order)
  end
end
";

/// KEYS: the count, the open set. ARGV: prefix, item. Answers false or {count, reserved}.
const STATE: &str = "
local count = redis.call('GET', KEYS[1])
if not count then return false end
return {tonumber(count), reserved}
";

/// KEYS: the count, the open set. ARGV: prefix, item, net, only_absent (0/1), then the
/// known orders. Answers false or {count, reserved}.
const SYNC_KNOWN: &str = "
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return false end
for i = 5, #ARGV do
  redis.call('HDEL', ARGV[1] .. 'alloc:d:' .. ARGV[i], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
";

const SYNC_SET: &str = "
local count = tonumber(ARGV[3]) - reserved
redis.call('SET', KEYS[1], count)
return {count, reserved}
";

/// KEYS: the open set. Answers the orders with a live delta on the item.
const OPEN: &str = "
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn allocation(answer: Option<(i64, i64)>) -> Option<Allocation> {
    answer.map(|(allocatable, reserved)| Allocation {
        allocatable,
        reserved,
    })
}

fn line_of(lines: &[(String, i64)], answer: &[i64]) -> anyhow::Result<String> {
    let i = answer
        .get(1)
        .and_then(|i| usize::try_from(*i).ok())
        .and_then(|i| i.checked_sub(1))
        .ok_or_else(|| anyhow::anyhow!("the take script answered {answer:?}"))?;
    lines
        .get(i)
        .map(|(item, _)| item.clone())
        .ok_or_else(|| anyhow::anyhow!("the take script named line {i} of {}", lines.len()))
}

impl RedisCoord {
    fn script(&self, body: &[&str], keys: &[String]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(body.concat()).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        cmd
    }

    fn prefix_arg(&self) -> String {
        self.key("")
    }

    pub(crate) async fn take_allocation(
        &self,
        order: &str,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> anyhow::Result<Taken> {
        let mut keys = vec![self.key(&format!("alloc:d:{order}"))];
        keys.extend(lines.iter().map(|(i, _)| self.key(&format!("alloc:n:{i}"))));
        keys.extend(lines.iter().map(|(i, _)| self.key(&format!("alloc:o:{i}"))));
        let mut cmd = self.script(&[NOW, TAKE], &keys);
        cmd.arg(order).arg(millis(ttl));
        for (item, units) in lines {
            cmd.arg(item).arg(*units);
        }
        let answer: Vec<i64> = self.run(&cmd).await?;
        Ok(match answer.first() {
            Some(0) => Taken::Taken,
            Some(1) => Taken::Already,
            Some(2) => Taken::Unknown(line_of(lines, &answer)?),
            Some(3) => Taken::Short {
                item: line_of(lines, &answer)?,
                left: answer.get(2).copied().unwrap_or(0),
            },
            _ => anyhow::bail!("the take script answered {answer:?}"),
        })
    }

    pub(crate) async fn give_back_allocation(
        &self,
        order: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        let mut cmd = self.script(&[GIVE_BACK], &[self.key(&format!("alloc:d:{order}"))]);
        cmd.arg(self.prefix_arg()).arg(order);
        let flat: Vec<String> = self.run(&cmd).await?;
        flat.chunks(2)
            .map(|pair| match pair {
                [item, units] => Ok((item.clone(), units.parse()?)),
                _ => anyhow::bail!("the give-back script answered an odd list"),
            })
            .collect()
    }

    pub(crate) async fn allocation_counts(
        &self,
        items: &[String],
    ) -> anyhow::Result<Vec<Option<i64>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for item in items {
            cmd.arg(self.key(&format!("alloc:n:{item}")));
        }
        self.run(&cmd).await
    }

    fn item_keys(&self, item: &str) -> [String; 2] {
        [
            self.key(&format!("alloc:n:{item}")),
            self.key(&format!("alloc:o:{item}")),
        ]
    }

    pub(crate) async fn allocation_state(&self, item: &str) -> anyhow::Result<Option<Allocation>> {
        let mut cmd = self.script(&[NOW, RESERVED, STATE], &self.item_keys(item));
        cmd.arg(self.prefix_arg()).arg(item);
        Ok(allocation(self.run(&cmd).await?))
    }

    pub(crate) async fn allocation_open(&self, item: &str) -> anyhow::Result<Vec<String>> {
        let [_, open] = self.item_keys(item);
        self.run(&self.script(&[NOW, OPEN], &[open])).await
    }

    pub(crate) async fn sync_allocation(
        &self,
        item: &str,
        net: i64,
        known: &[String],
        only_absent: bool,
    ) -> anyhow::Result<Option<Allocation>> {
        let mut cmd = self.script(
            &[NOW, SYNC_KNOWN, RESERVED, SYNC_SET],
            &self.item_keys(item),
        );
        cmd.arg(self.prefix_arg())
            .arg(item)
            .arg(net)
            .arg(u8::from(only_absent));
        for order in known {
            cmd.arg(order);
        }
        Ok(allocation(self.run(&cmd).await?))
    }
}
