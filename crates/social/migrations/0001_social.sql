-- Posts, their likes, and which likes have notified the author (once per liker and
-- post, not again after an unlike and a like). `like_count` moves in the transaction
-- that inserts or deletes a like row, and only when one was inserted or deleted.
CREATE TABLE posts (
    id         TEXT PRIMARY KEY,
    author_id  TEXT NOT NULL,
    text       TEXT NOT NULL,
    image_id   TEXT,
    like_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE post_likes (
    post_id  TEXT NOT NULL REFERENCES posts (id),
    user_id  TEXT NOT NULL,
    liked_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);

CREATE INDEX post_likes_newest ON post_likes (post_id, liked_at, user_id);

CREATE TABLE post_like_notices (
    post_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
