-- The browsers' push subscriptions (a PushSubscription each): where to send and the keys a
-- message is encrypted for. An endpoint is registered once per user.
CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (user_id, endpoint)
);

-- Stored notifications, newest first by `position` (a sequence value, taken again when a
-- notice gathers into one, so that it moves to the top). Unread: `read_at` is null.
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    actor_count BIGINT NOT NULL,
    body        TEXT NOT NULL,
    url         TEXT,
    position    BIGINT NOT NULL,
    read_at     BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- At most one unread notification per user, kind and subject: the target of the gathering
-- upsert. Once read, the next notice starts a new one.
CREATE UNIQUE INDEX notifications_gathering ON notifications (user_id, kind, subject_id) WHERE read_at IS NULL;
CREATE INDEX notifications_feed ON notifications (user_id, position);

-- Each actor of a notification once (what makes `actor_count` count people, not notices),
-- with the position of their latest notice for the "latest actors" list.
CREATE TABLE notification_actors (
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    actor_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    position        BIGINT NOT NULL,
    PRIMARY KEY (notification_id, actor_id)
);
CREATE INDEX notification_actors_latest ON notification_actors (notification_id, position);

-- The notices applied, by the caller's source id (a bus event id): a notice that comes
-- again changes nothing. Pruned after a week.
CREATE TABLE notification_sources (
    source_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (source_id, user_id, kind, subject_id)
);
CREATE INDEX notification_sources_age ON notification_sources (created_at);
