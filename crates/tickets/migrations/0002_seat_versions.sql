-- The live seat map (api.md "Tickets, second round"): every change of a seat counts up
-- its version, so a subscriber that hears of two changes from two nodes keeps the later.
ALTER TABLE seats ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
