-- The simulated gateway's own ledger: what it answered for each idempotency key. It
-- stands in for the records a real gateway keeps on its side.
CREATE TABLE sim_gateway_charges (
    idem_key   TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    status     TEXT NOT NULL,
    charge_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
