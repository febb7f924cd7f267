-- The stock ledger of seed 002: what each store counted, sold and bought, what is held
-- out of sale, and the orders paid and not yet shipped; the online store's net stock is
-- computed from these and synced to the allocation store.

-- The products inventory keeps stock of, by SKU.
CREATE TABLE inventory_items (
    product_id  TEXT PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Book stock per store and SKU as counted on a day; a later count for the day replaces it.
CREATE TABLE inventory_book (
    store       TEXT NOT NULL,
    sku         TEXT NOT NULL,
    day         TEXT NOT NULL,
    day_start   BIGINT NOT NULL,
    quantity    BIGINT NOT NULL,
    import_id   TEXT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (store, sku, day)
);

-- Sales and purchases of the stores, as imported.
CREATE TABLE inventory_moves (
    id          TEXT PRIMARY KEY,
    import_id   TEXT NOT NULL,
    store       TEXT NOT NULL,
    sku         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX inventory_moves_sku ON inventory_moves (store, sku, at);

-- Units held out of sale per store, SKU and reason (display samples, damaged, corrections).
CREATE TABLE inventory_adjustments (
    store       TEXT NOT NULL,
    sku         TEXT NOT NULL,
    reason      TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    import_id   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (store, sku, reason)
);

-- Every applied import; the same file (by key or by checksum) applies once.
CREATE TABLE inventory_imports (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    checksum        TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    row_count       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (kind, checksum)
);

-- Orders paid per channel (`own` for this shop) and line, until they are shipped.
CREATE TABLE inventory_orders (
    channel     TEXT NOT NULL,
    reference   TEXT NOT NULL,
    sku         TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    paid_at     BIGINT NOT NULL,
    shipped_at  BIGINT,
    PRIMARY KEY (channel, reference, sku)
);
CREATE INDEX inventory_orders_sku ON inventory_orders (sku, shipped_at);

-- The last figures each SKU was synced with.
CREATE TABLE inventory_synced (
    sku          TEXT PRIMARY KEY,
    net          BIGINT NOT NULL,
    allocatable  BIGINT NOT NULL,
    synced_at    BIGINT NOT NULL
);

-- Flash-sale mode: one row.
CREATE TABLE inventory_flash (
    id       BIGINT PRIMARY KEY,
    enabled  BIGINT NOT NULL,
    since    BIGINT NOT NULL
);
INSERT INTO inventory_flash (id, enabled, since) VALUES (1, 0, 0);

-- What the allocation store and the ledger disagreed on when flash-sale mode last ended.
CREATE TABLE inventory_reconciliation (
    sku          TEXT PRIMARY KEY,
    ledger       BIGINT NOT NULL,
    allocation   BIGINT NOT NULL,
    reconciled_at BIGINT NOT NULL
);
