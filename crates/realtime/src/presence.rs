//! The connection registry in `coord`: for each user, the nodes holding a socket of
//! theirs, each with the time its entry lapses unless the node's heartbeat renews it. A
//! user is online while any entry is current, so a node that dies stops counting after
//! one time to live, without anyone cleaning up after it.
//!
//! Topics are counted the same way: each follower (`<node>#<id>`) is a member of the
//! topic's set, scored with the time it lapses, so a room's viewer count is exact across
//! nodes and forgets a dead node's followers by itself.

use std::time::Duration;

use matsuri_coord::SharedCoord;
use matsuri_core::SharedClock;

/// Users stamped per round trip by the heartbeat.
const STAMP_BATCH: usize = 1_000;

pub(crate) struct Presence {
    coord: SharedCoord,
    clock: SharedClock,
    node: String,
    ttl: Duration,
}

fn key(user: &str) -> String {
    format!("rt:on:{user}")
}

fn watchers_key(topic: &str) -> String {
    format!("rt:watch:{topic}")
}

impl Presence {
    pub(crate) fn new(coord: SharedCoord, clock: SharedClock, node: String, ttl: Duration) -> Self {
        Self {
            coord,
            clock,
            node,
            ttl,
        }
    }

    fn lapses_at(&self) -> i64 {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2);
        self.clock.now_ms().saturating_add(ttl)
    }

    /// Records that this node holds sockets of these users.
    pub(crate) async fn stamp(&self, users: &[String]) -> anyhow::Result<()> {
        let at = self.lapses_at();
        for chunk in users.chunks(STAMP_BATCH) {
            let keys: Vec<String> = chunk.iter().map(|u| key(u)).collect();
            self.coord
                .zadd_each(&keys, &self.node, at, self.ttl)
                .await?;
        }
        Ok(())
    }

    /// Records that this node holds no socket of `user` any more.
    pub(crate) async fn clear(&self, user: &str) -> anyhow::Result<()> {
        self.coord.zrem(&key(user), &self.node).await?;
        Ok(())
    }

    /// For each user, whether some node holds a socket of theirs.
    pub(crate) async fn online(&self, users: &[&str]) -> anyhow::Result<Vec<bool>> {
        let keys: Vec<String> = users.iter().map(|u| key(u)).collect();
        let now = self.clock.now_ms();
        Ok(self
            .coord
            .zmax_each(&keys)
            .await?
            .into_iter()
            .map(|until| until.is_some_and(|at| at > now))
            .collect())
    }

    fn follower(&self, id: u64) -> String {
        format!("{}#{id}", self.node)
    }

    /// Records that follower `id` of this node follows `topic`.
    pub(crate) async fn watch(&self, topic: &str, id: u64) -> anyhow::Result<()> {
        let keys = [watchers_key(topic)];
        self.coord
            .zadd_each(&keys, &self.follower(id), self.lapses_at(), self.ttl)
            .await
    }

    /// Records that follower `id` of this node no longer follows `topic`.
    pub(crate) async fn unwatch(&self, topic: &str, id: u64) -> anyhow::Result<()> {
        self.coord
            .zrem(&watchers_key(topic), &self.follower(id))
            .await?;
        Ok(())
    }

    /// Renews the entries of this node's followers of each topic.
    pub(crate) async fn renew_watching(&self, topics: &[(String, Vec<u64>)]) -> anyhow::Result<()> {
        let at = self.lapses_at();
        for (topic, ids) in topics {
            let Some(first) = ids.first() else { continue };
            let key = watchers_key(topic);
            for chunk in ids.chunks(STAMP_BATCH) {
                let members: Vec<(String, i64)> =
                    chunk.iter().map(|id| (self.follower(*id), at)).collect();
                self.coord.zadd_many(&key, &members).await?;
            }
            // Renewing one member again also renews the set's own time to live.
            self.coord
                .zadd_each(
                    std::slice::from_ref(&key),
                    &self.follower(*first),
                    at,
                    self.ttl,
                )
                .await?;
        }
        Ok(())
    }

    /// How many followers `topic` has on every node.
    pub(crate) async fn watchers(&self, topic: &str) -> anyhow::Result<u64> {
        let key = watchers_key(topic);
        self.coord.zrem_up_to(&key, self.clock.now_ms()).await?;
        self.coord.zcard(&key).await
    }
}
