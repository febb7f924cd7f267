-- Counter rows behind Db::next_in_sequence on SQLite (PostgreSQL uses real sequences).
CREATE TABLE IF NOT EXISTS sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- One row per (user, scope, Idempotency-Key): the request's fingerprint, the resource it
-- created, and once finished the answer to replay.
CREATE TABLE idempotency_keys (
    user_id       TEXT NOT NULL,
    scope         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    resource_id   TEXT,
    status_code   BIGINT,
    response_body TEXT,
    created_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    PRIMARY KEY (user_id, scope, idem_key)
);
CREATE INDEX idempotency_keys_resource ON idempotency_keys (resource_id);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
