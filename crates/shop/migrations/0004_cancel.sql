-- A paid order the customer cancelled before it shipped, and when its charge was refunded.
ALTER TABLE orders ADD COLUMN cancelled_at BIGINT;
ALTER TABLE orders ADD COLUMN refunded_at BIGINT;
