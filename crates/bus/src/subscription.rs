//! What the relay and the workers share: a consumer group's subscription to a topic, and an
//! event as read from the log. A leaf: it imports nothing else of the bus.

use std::time::Duration;

use crate::{Event, SharedConsumer};

/// One consumer group's subscription to one topic.
#[derive(Clone)]
pub struct Subscription {
    pub topic: &'static str,
    pub group: &'static str,
    pub consumer: SharedConsumer,
    /// Attempts before the event is dead (default 3).
    pub max_attempts: i64,
    /// A handler running longer than this has failed.
    pub deadline: Duration,
}

impl Subscription {
    pub fn new(topic: &'static str, group: &'static str, consumer: SharedConsumer) -> Self {
        Self {
            topic,
            group,
            consumer,
            max_attempts: 3,
            deadline: Duration::from_secs(30),
        }
    }

    pub fn with_max_attempts(mut self, max_attempts: i64) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long a worker may hold the cursor before another may take over.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.deadline.as_millis().saturating_mul(4))
            .unwrap_or(i64::MAX / 4)
            .max(60_000)
    }
}

/// An event read from the log, with its position.
#[derive(Clone)]
pub(crate) struct Logged {
    pub(crate) seq: i64,
    pub(crate) event: Event,
}
