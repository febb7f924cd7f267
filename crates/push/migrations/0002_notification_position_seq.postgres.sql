CREATE SEQUENCE IF NOT EXISTS notification_position_seq;
