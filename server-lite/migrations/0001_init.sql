-- Videos (and audio) known to this pod: uploaded here or learnt from a followed pod.
CREATE TABLE videos (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    tags          TEXT    NOT NULL DEFAULT '',   -- space-separated, lowercase
    duration      REAL,                          -- seconds, when known
    mime_type     TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    info_hash     TEXT    NOT NULL,              -- 40 lowercase hex
    file_name     TEXT    NOT NULL,              -- name inside the torrent and under webseed/
    thumbnail     TEXT,                          -- file name under thumbnails/, when made
    owner         TEXT    NOT NULL DEFAULT 'admin',
    origin_pod    TEXT,                          -- NULL = this pod
    created_at    TEXT    NOT NULL,              -- RFC 3339 UTC
    updated_at    TEXT    NOT NULL
);
CREATE INDEX videos_created_at ON videos (created_at);
CREATE INDEX videos_info_hash ON videos (info_hash);
