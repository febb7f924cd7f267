-- Live rooms, their comments and comment likes, bans, and the spam models trained for
-- them. Times are milliseconds since the epoch; a comment's `offset_ms` is its time from
-- the room's start, so a replay can show it at the moment it was written.
CREATE TABLE live_rooms (
    id                    TEXT PRIMARY KEY,
    title                 TEXT NOT NULL,
    streamer_id           TEXT NOT NULL,
    status                TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    started_at            BIGINT,
    ended_at              BIGINT,
    ng_words              TEXT NOT NULL,
    allowed_words         TEXT NOT NULL,
    rate_limit_per_minute BIGINT NOT NULL,
    slow_mode_seconds     BIGINT NOT NULL,
    links_allowed         BIGINT NOT NULL,
    display_per_second    BIGINT NOT NULL
);

CREATE INDEX live_rooms_newest ON live_rooms (created_at, id);

-- `status`: shown, held (for review), removed (by a moderator), rejected (at review).
-- `label` is a moderator's verdict, an example for the next spam model: ham or spam.
CREATE TABLE live_comments (
    id         TEXT PRIMARY KEY,
    live_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    text       TEXT NOT NULL,
    likes      BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    offset_ms  BIGINT NOT NULL,
    status     TEXT NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    label      TEXT
);

CREATE INDEX live_comments_archive ON live_comments (live_id, status, id);
CREATE INDEX live_comments_replay ON live_comments (live_id, status, offset_ms, id);
CREATE INDEX live_comments_liked ON live_comments (live_id, status, likes);
CREATE INDEX live_comments_labelled ON live_comments (label, id);

CREATE TABLE live_comment_likes (
    comment_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    liked_at   BIGINT NOT NULL,
    PRIMARY KEY (comment_id, user_id)
);

-- `until` NULL: for good.
CREATE TABLE live_bans (
    live_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    until      BIGINT,
    banned_by  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (live_id, user_id)
);

-- `model`: the serialised classifier, base64.
CREATE TABLE live_spam_models (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    ham        BIGINT NOT NULL,
    spam       BIGINT NOT NULL,
    model      TEXT NOT NULL
);
