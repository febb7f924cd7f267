-- Every change to stock, as a signed quantity with its reason. Sales come from
-- `order.paid`; book stock, purchases and adjustments arrive with the inventory imports.
CREATE TABLE inventory_ledger (
    id           TEXT PRIMARY KEY,
    product_id   TEXT NOT NULL,
    sku          TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    reference    TEXT NOT NULL,
    event_id     TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (reason, reference, product_id)
);
CREATE INDEX inventory_ledger_sku ON inventory_ledger (sku, created_at);
