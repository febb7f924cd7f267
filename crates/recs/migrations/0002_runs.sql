-- One row per batch run, with its counts, timings and offline evaluation.
CREATE TABLE recs_runs (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    source      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    stage       TEXT NOT NULL DEFAULT '',
    progress    BIGINT NOT NULL DEFAULT 0,
    events      BIGINT NOT NULL DEFAULT 0,
    users       BIGINT NOT NULL DEFAULT 0,
    items       BIGINT NOT NULL DEFAULT 0,
    timings     TEXT NOT NULL DEFAULT '{}',
    metrics     TEXT,
    error       TEXT
);
CREATE INDEX recs_runs_started ON recs_runs (started_at);

-- A run's lists: `u:<user>` recommendations, `p:<product>` related items, `*` popular.
CREATE TABLE recs_lists (
    run_id TEXT NOT NULL,
    owner  TEXT NOT NULL,
    items  TEXT NOT NULL,
    PRIMARY KEY (run_id, owner)
);

-- The run readers read: flipped in one statement when a run has written all its lists.
CREATE TABLE recs_current (
    slot   BIGINT PRIMARY KEY CHECK (slot = 1),
    run_id TEXT NOT NULL
);

-- Who runs the batch now, until when: one node at a time.
CREATE TABLE recs_lease (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);
