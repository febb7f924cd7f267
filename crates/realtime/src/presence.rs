//! The connection registry in `coord`: for each user, the nodes holding a socket of
//! theirs, each with the time its entry lapses unless the node's heartbeat renews it. A
//! user is online while any entry is current, so a node that dies stops counting after
//! one time to live, without anyone cleaning up after it.

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
}
