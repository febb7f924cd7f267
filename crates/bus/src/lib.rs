//! The `bus` port: durable events with fan-out to consumer groups.
//!
//! A producer writes an event into the outbox inside the transaction that causes it
//! ([`publish`]), so nothing committed is lost and nothing rolled back is sent. The relay
//! fans each event out to every group subscribed to its topic; each group then works
//! through its own deliveries, so a failing group never holds another back. Delivery is
//! at least once: a failed attempt is retried with exponential backoff and jitter, and
//! after `max_attempts` the delivery is marked dead with its last error.

mod admin;
mod nats;
mod routes;
mod subscription;
mod worker;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use matsuri_core::clock::Millis;
use matsuri_db::{Conn, Migration, MigrationSet, Param, Statements};

pub use admin::{BusAdmin, ConsumerStats, DeadLetter};
pub use nats::NatsLink;
pub use routes::routes;
pub use subscription::Subscription;
pub use worker::{Bus, Nudge, Transport, backoff_ms};

/// An event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub topic: String,
    pub key: Option<String>,
    pub payload: serde_json::Value,
    pub created_at: Millis,
}

impl Event {
    /// The payload as a typed value.
    pub fn decode<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        Ok(serde_json::from_value(self.payload.clone())?)
    }
}

/// Handles the events of one consumer group. Must be idempotent: an event can arrive more
/// than once.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    async fn handle(&self, event: &Event) -> anyhow::Result<()>;

    /// Handles `events` together, in the order given: all of them take effect, or an
    /// error after which handling them again does nothing twice (a consumer whose effects
    /// sit in one transaction rolls it back; one with effects outside records what it
    /// did). A consumer can apply a whole batch in a few statements this way. The bus offers each batch here first; when this
    /// fails it hands the events over one at a time, so that a bad event is retried and
    /// dead-lettered alone. `None`: this consumer takes events one at a time only.
    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        let _ = events;
        None
    }
}

pub type SharedConsumer = Arc<dyn Consumer>;

/// Writes an event to the outbox, on the connection of the transaction that causes it.
/// Returns the event id.
pub async fn publish(
    conn: &mut Conn,
    now: Millis,
    topic: &str,
    key: Option<&str>,
    payload: &impl Serialize,
) -> anyhow::Result<String> {
    let mut write = Statements::new();
    let id = publish_with(&mut write, now, topic, key, payload)?;
    write.run(conn).await?;
    Ok(id)
}

/// [`publish`] as one of statements sent together: the event is written when they run,
/// on the connection of the transaction that causes it. Returns the event id.
pub fn publish_with(
    write: &mut Statements,
    now: Millis,
    topic: &str,
    key: Option<&str>,
    payload: &impl Serialize,
) -> anyhow::Result<String> {
    let id = matsuri_core::ids::new_uuid_v7();
    write.add(
        "INSERT INTO outbox (id, topic, event_key, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Param::from(&id),
            Param::from(topic),
            Param::from(key),
            Param::from(serde_json::to_string(payload)?),
            Param::from(now),
        ],
    );
    Ok(id)
}

/// [`publish`] for many events of one topic, `(key, payload)` each, in a few multi-row
/// statements instead of one per event (each within [`matsuri_db::STATEMENT_BYTES`]), on
/// the connection of the transaction that causes them.
pub async fn publish_all<P: Serialize>(
    conn: &mut Conn,
    now: Millis,
    topic: &str,
    events: &[(Option<&str>, P)],
) -> anyhow::Result<()> {
    let dialect = matsuri_db::Dialect::of(conn);
    let rows = events
        .iter()
        .map(|(key, payload)| Ok((*key, serde_json::to_string(payload)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()?;
    let row_bytes = |key: Option<&str>, payload: &str| {
        OUTBOX_ROW_BYTES + topic.len() + key.map_or(0, str::len) + payload.len()
    };
    let most = matsuri_db::rows_per_statement(5);
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        // As many rows as fit in one statement's bytes, and at least one.
        let mut bytes = 0;
        let take = rest
            .iter()
            .take(most)
            .take_while(|(key, payload)| {
                bytes += row_bytes(*key, payload);
                bytes <= matsuri_db::STATEMENT_BYTES
            })
            .count()
            .max(1);
        let (chunk, after) = rest.split_at(take.min(rest.len()));
        rest = after;
        let sql = format!(
            "INSERT INTO outbox (id, topic, event_key, payload, created_at) VALUES {}",
            matsuri_db::value_rows(dialect, chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, payload) in chunk {
            query = query
                .bind(matsuri_core::ids::new_uuid_v7())
                .bind(topic)
                .bind(*key)
                .bind(payload.as_str())
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// What an outbox row carries besides its topic, key and payload: the id, the time, and
/// the lengths of the five values.
const OUTBOX_ROW_BYTES: usize = 36 + 8 + 5 * 4;

/// Records that `group` applied `event_id`, on the connection of the transaction that
/// applies it. False when the group applied it before: the caller must then change
/// nothing.
pub async fn apply_once(
    conn: &mut Conn,
    group: &str,
    event_id: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO bus_applied (group_name, event_id, applied_at) VALUES ($1, $2, $3) \
         ON CONFLICT (group_name, event_id) DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// [`apply_once`] for many events: records each that `group` has not applied before, and
/// returns those, which the caller applies in the same transaction.
pub async fn apply_all(
    conn: &mut Conn,
    group: &str,
    event_ids: &[&str],
    now: Millis,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut fresh = HashSet::with_capacity(event_ids.len());
    let dialect = matsuri_db::Dialect::of(conn);
    for chunk in event_ids.chunks(matsuri_db::rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO bus_applied (group_name, event_id, applied_at) VALUES {} \
             ON CONFLICT (group_name, event_id) DO NOTHING RETURNING event_id",
            matsuri_db::value_rows(dialect, chunk.len(), 3)
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(group).bind(*id).bind(now);
        }
        fresh.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(fresh)
}

/// Which of `event_ids` `group` has applied already: for consumers whose effect cannot
/// sit in a transaction (a file, a message sent) and must check before acting.
pub async fn applied_among(
    conn: &mut Conn,
    group: &str,
    event_ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut applied = HashSet::new();
    for chunk in event_ids.chunks(matsuri_db::rows_per_statement(1)) {
        let sql = format!(
            "SELECT event_id FROM bus_applied WHERE group_name = $1 AND event_id IN ({})",
            matsuri_db::parameter_list(2, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(group);
        for id in chunk {
            query = query.bind(*id);
        }
        applied.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(applied)
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "bus",
    migrations: &[Migration {
        version: 1,
        name: "outbox, deliveries, dead letters, applied events",
        sql: include_str!("../migrations/0001_outbox.sql"),
        postgres_sql: None,
    }],
};
