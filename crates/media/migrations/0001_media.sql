-- Uploads and images. An upload is `pending` from its presigned URL until complete checks
-- what was put (`completed`, with its image) or refuses it (`refused`, the object gone).
-- An image is `processing` until the worker has stored its variants (`completed`) or
-- found the original unusable (`failed`, the original gone, the reason kept).
CREATE TABLE media_uploads (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    state        TEXT NOT NULL,
    image_id     TEXT,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE INDEX media_uploads_abandoned ON media_uploads (state, expires_at);

CREATE TABLE media_images (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    upload_id      TEXT NOT NULL UNIQUE,
    filename       TEXT NOT NULL,
    status         TEXT NOT NULL,
    title          TEXT,
    -- The title and file name in lower case, for `?q=`.
    search_text    TEXT NOT NULL,
    tags           TEXT NOT NULL,
    width          BIGINT,
    height         BIGINT,
    format         TEXT NOT NULL,
    bytes          BIGINT NOT NULL,
    taken_at       BIGINT,
    -- JSON: [{name, width, height, bytes, etag}].
    variants       TEXT NOT NULL,
    failure_reason TEXT,
    created_at     BIGINT NOT NULL,
    processed_at   BIGINT
);

CREATE INDEX media_images_owner ON media_images (owner_id, id);

CREATE TABLE media_image_tags (
    image_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);

CREATE INDEX media_image_tags_owner ON media_image_tags (owner_id, tag, image_id);
