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
CREATE TABLE bus_deliveries (
    group_name      TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES outbox (id),
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX bus_deliveries_due ON bus_deliveries (group_name, status, next_attempt_at);
