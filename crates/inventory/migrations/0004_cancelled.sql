-- A cancelled own order: its units are no longer owed to the customer, so net stock stops
-- subtracting them. Only an order not shipped yet can be cancelled.
ALTER TABLE inventory_orders ADD COLUMN cancelled_at BIGINT;
