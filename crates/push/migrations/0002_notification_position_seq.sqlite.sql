INSERT INTO sequences (name, value) VALUES ('notification_position_seq', 0) ON CONFLICT (name) DO NOTHING;
