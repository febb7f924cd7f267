-- Chats, their members with each member's read and delivered marks, and the messages.
-- A chat's messages are numbered 1, 2, 3… (`seq`) in the order they were stored, under
-- the chat row's lock; a member's unread count is the chat's last number minus their
-- read mark, since a member's own message moves their mark to it.
CREATE TABLE chats (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    title            TEXT,
    direct_key       TEXT UNIQUE,
    last_seq         BIGINT NOT NULL DEFAULT 0,
    last_msg_id      TEXT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL
);

CREATE TABLE chat_members (
    chat_id       TEXT NOT NULL REFERENCES chats (id),
    user_id       TEXT NOT NULL,
    joined_at     BIGINT NOT NULL,
    read_seq      BIGINT NOT NULL DEFAULT 0,
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);

CREATE INDEX chat_members_by_user ON chat_members (user_id, chat_id);

CREATE TABLE chat_messages (
    id            TEXT PRIMARY KEY,
    chat_id       TEXT NOT NULL REFERENCES chats (id),
    seq           BIGINT NOT NULL,
    sender_id     TEXT NOT NULL,
    text          TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    delivered_at  BIGINT,
    read_at       BIGINT,
    UNIQUE (chat_id, seq),
    UNIQUE (chat_id, sender_id, client_msg_id)
);

CREATE INDEX chat_messages_by_chat ON chat_messages (chat_id, id);
