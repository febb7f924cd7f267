-- Invoices made by the billing consumer from `order.paid` (seed 004): subtotal,
-- consumption tax 10 % rounded down, total.
CREATE TABLE invoices (
    id           TEXT PRIMARY KEY,
    order_number TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    subtotal     BIGINT NOT NULL,
    tax          BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    line_no    BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    sku        TEXT NOT NULL,
    name       TEXT NOT NULL,
    unit_price BIGINT NOT NULL,
    quantity   BIGINT NOT NULL,
    line_total BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
