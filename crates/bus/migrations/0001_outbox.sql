-- Events written in the same transaction as the change that causes them. The relay gives
-- each committed event its place in the bus log (`seq`), in order, one relay at a time.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    event_key  TEXT,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seq        BIGINT UNIQUE
);
CREATE INDEX outbox_unrelayed ON outbox (id) WHERE seq IS NULL;
CREATE INDEX outbox_log ON outbox (topic, seq);

-- Each subscription's place in the log, its counters, and the lease of the worker
-- currently advancing it.
CREATE TABLE bus_cursors (
    group_name   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    position     BIGINT NOT NULL DEFAULT 0,
    processed    BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    leased_until BIGINT NOT NULL DEFAULT 0,
    lease_token  TEXT,
    PRIMARY KEY (group_name, topic)
);

-- Events a group has passed but not handled: failed ones waiting for their next attempt,
-- later events of the same key queued behind them, and dead ones.
-- status: pending or dead.
CREATE TABLE bus_parked (
    group_name      TEXT NOT NULL,
    topic           TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES outbox (id),
    seq             BIGINT NOT NULL,
    event_key       TEXT,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    PRIMARY KEY (group_name, topic, event_id)
);
CREATE INDEX bus_parked_due ON bus_parked (group_name, topic, status, next_attempt_at);
CREATE INDEX bus_parked_key ON bus_parked (group_name, topic, event_key, status, seq);

-- Deliveries that used up their attempts, for an operator to inspect, retry or delete.
CREATE TABLE bus_dead_letters (
    id         TEXT PRIMARY KEY,
    group_name TEXT NOT NULL,
    topic      TEXT NOT NULL,
    event_id   TEXT NOT NULL REFERENCES outbox (id),
    attempts   BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    dead_at    BIGINT NOT NULL
);
CREATE INDEX bus_dead_letters_group ON bus_dead_letters (group_name, id);

-- Which events each group has applied: consumers record them in the transaction of their
-- effect, so a redelivered event changes nothing twice.
CREATE TABLE bus_applied (
    group_name TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, event_id)
);

-- With the JetStream backend: how far each stream has been published from the log.
CREATE TABLE bus_nats_published (
    stream TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL
);
