-- The live seat map (api.md "Tickets, second round"): every change of a seat counts up
-- its version, so a subscriber that hears of two changes from two nodes keeps the later.
ALTER TABLE seats ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Best available looks for the first free block in position order: past the seats
-- already sold, which a rush fills from the front.
CREATE INDEX seats_unsold ON seats (event_id, position) WHERE status <> 'sold';
