-- Likes no longer reference their post by a foreign key: every like's key check took a
-- share lock on the post's row, and a storm of likes on one post turned those into
-- MultiXacts that the count's update had to wait through. The rows stay consistent
-- without it: a like is counted by an update of its post's row in the same transaction
-- (no row, no like), and a post's deletion takes that row first and then its likes.
ALTER TABLE post_likes DROP CONSTRAINT IF EXISTS post_likes_post_id_fkey;
