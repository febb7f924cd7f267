-- Marketplaces that sell our stock beside the shop (seed 002): each connection, the units
-- it was granted per SKU out of the allocation store, and every adjustment of its listing
-- (applied once by id, retried until the marketplace answers).

CREATE TABLE inventory_channels (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    base_url        TEXT NOT NULL,
    token           TEXT NOT NULL,
    status          TEXT NOT NULL,
    last_error      TEXT,
    failures        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL,
    cursor          TEXT,
    last_pull_at    BIGINT,
    last_push_at    BIGINT,
    created_at      BIGINT NOT NULL
);

-- Units out of the allocation store that a channel may sell: what it lists plus what it
-- sold and we have not pulled yet.
CREATE TABLE inventory_channel_stock (
    channel_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    listed      BIGINT NOT NULL,
    PRIMARY KEY (channel_id, sku)
);

-- Adjustments of a channel's listing; a pending one is sent again with the same id.
CREATE TABLE inventory_channel_pushes (
    id          TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    delta       BIGINT NOT NULL,
    state       TEXT NOT NULL,
    applied     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX inventory_channel_pushes_pending ON inventory_channel_pushes (channel_id, state);

-- When a shipped marketplace order was reported to its channel.
ALTER TABLE inventory_orders ADD COLUMN reported_at BIGINT;
