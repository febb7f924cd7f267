-- Concert ticketing (seeds 001 §4 and 003): events with their seats, holds
-- (reservations), wallets, tickets, and the access tokens the waiting room hands out.

CREATE TABLE ticket_events (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    sale_starts_at BIGINT,
    hold_seconds BIGINT NOT NULL,
    max_active BIGINT NOT NULL,
    seat_count BIGINT NOT NULL,
    sections TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A seat is `available`, `held` (by `reservation_id` until `held_until`) or `sold`.
-- Every change is one conditional UPDATE whose WHERE clause is the invariant.
CREATE TABLE seats (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES ticket_events (id),
    section TEXT NOT NULL,
    row_no BIGINT NOT NULL,
    seat_no BIGINT NOT NULL,
    position BIGINT NOT NULL,
    price BIGINT NOT NULL,
    status TEXT NOT NULL,
    reservation_id TEXT,
    held_until BIGINT,
    updated_at BIGINT NOT NULL,
    UNIQUE (event_id, position)
);
CREATE INDEX seats_by_reservation ON seats (reservation_id);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES ticket_events (id),
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    seat_ids TEXT NOT NULL,
    seat_count BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    access_token TEXT,
    -- A card charge in flight: its gateway idempotency key and when it started.
    charge_key TEXT,
    charging_since BIGINT,
    payment_method TEXT,
    charge_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    paid_at BIGINT
);
CREATE INDEX reservations_by_user ON reservations (user_id, id);
CREATE INDEX reservations_by_expiry ON reservations (status, expires_at);

-- One ticket per seat, ever: the unique seat is the last word on "no seat sold twice".
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES ticket_events (id),
    seat_id TEXT NOT NULL UNIQUE REFERENCES seats (id),
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    user_id TEXT NOT NULL,
    section TEXT NOT NULL,
    row_no BIGINT NOT NULL,
    seat_no BIGINT NOT NULL,
    price BIGINT NOT NULL,
    qr_payload TEXT NOT NULL,
    status TEXT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX tickets_by_user ON tickets (user_id, id);

-- Balances change only through a version check (optimistic lock, seed 003).
CREATE TABLE wallets (
    user_id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL,
    charged_total BIGINT NOT NULL,
    paid_total BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE wallet_entries (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    reservation_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX wallet_entries_by_user ON wallet_entries (user_id, id);

-- The database copy of every access token the waiting room issued: token checks fall
-- back to it when the coordination store is unreachable (seed 003).
CREATE TABLE access_tokens (
    token TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    released_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- The Ed25519 key that signs ticket QR payloads, made once and shared by every node.
CREATE TABLE ticket_signing_keys (
    id BIGINT PRIMARY KEY,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
