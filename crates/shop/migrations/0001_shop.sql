CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price       BIGINT NOT NULL CHECK (price >= 0),
    -- What can still be sold. Changed only by conditional updates that keep it >= 0.
    available   BIGINT NOT NULL CHECK (available >= 0),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE cart_items (
    user_id    TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    status           TEXT NOT NULL,
    subtotal         BIGINT NOT NULL,
    tax              BIGINT NOT NULL,
    total            BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    ship_name        TEXT NOT NULL,
    ship_postal_code TEXT NOT NULL,
    ship_address     TEXT NOT NULL,
    from_cart        BIGINT NOT NULL,
    -- The key the gateway knows this order's charge by.
    charge_key       TEXT NOT NULL UNIQUE,
    charge_id        TEXT,
    failure_reason   TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    paid_at          BIGINT
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status ON orders (status, created_at);

CREATE TABLE order_lines (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    line_no    BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    sku        TEXT NOT NULL,
    name       TEXT NOT NULL,
    unit_price BIGINT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    line_total BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- The first sequence value of each day: order numbers count from it, so they restart
-- every day without a counter row that every checkout would have to lock.
CREATE TABLE order_number_days (
    day       TEXT PRIMARY KEY,
    first_seq BIGINT NOT NULL
);

-- Every order mail sent, so a redelivered event never sends one twice.
CREATE TABLE order_mails (
    order_number TEXT NOT NULL,
    kind         TEXT NOT NULL,
    to_addr      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (order_number, kind)
);
