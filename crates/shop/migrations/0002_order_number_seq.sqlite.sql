INSERT INTO sequences (name, value) VALUES ('order_number_seq', 0) ON CONFLICT (name) DO NOTHING;
