-- The activity log: append-only, kept in (at, id) order so that the batch reads it as
-- one sequential range and old days are deleted as ranges.
CREATE TABLE recs_activity (
    at         BIGINT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    product_id TEXT,
    query      TEXT,
    PRIMARY KEY (at, id)
);
