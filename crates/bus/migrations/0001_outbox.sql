-- Events written in the same transaction as the change that causes them.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    event_key  TEXT,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    relayed    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unrelayed ON outbox (relayed, id);

-- One row per event and consumer group: that group's progress with that event.
-- status: pending (waiting, in backoff or being handled), done, dead.
CREATE TABLE bus_deliveries (
    group_name      TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES outbox (id),
    event_key       TEXT,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX bus_deliveries_due ON bus_deliveries (group_name, status, next_attempt_at);
CREATE INDEX bus_deliveries_key ON bus_deliveries (group_name, event_key, status, event_id);

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
