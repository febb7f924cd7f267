-- Likes no longer reference their post by a foreign key. On PostgreSQL every like's key
-- check took a share lock on the post's row, and a storm of likes on one post turned
-- those into MultiXacts that the count's update had to wait through. The rows stay
-- consistent without it: a like is counted by an update of its post's row in the same
-- transaction (no row, no like), and a post's deletion takes that row first and then its
-- likes. SQLite cannot drop a constraint, so the table is made again without it.
CREATE TABLE post_likes_unkeyed (
    post_id  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    liked_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
INSERT INTO post_likes_unkeyed (post_id, user_id, liked_at)
    SELECT post_id, user_id, liked_at FROM post_likes;
DROP TABLE post_likes;
ALTER TABLE post_likes_unkeyed RENAME TO post_likes;
CREATE INDEX post_likes_newest ON post_likes (post_id, liked_at, user_id);
