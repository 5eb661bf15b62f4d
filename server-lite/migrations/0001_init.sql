-- Videos (and audio) known to this pod: uploaded here or learnt from a followed pod.
CREATE TABLE videos (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    tags          TEXT    NOT NULL DEFAULT '',   -- space-separated, lowercase
    duration      REAL,                          -- seconds, when known
    mime_type     TEXT    NOT NULL,              -- with codecs when known: video/mp4; codecs="…"
    size          INTEGER NOT NULL,
    info_hash     TEXT    NOT NULL UNIQUE,       -- 40 lowercase hex
    torrent_info  BLOB    NOT NULL,              -- the raw bencoded info dict (the swarm's identity)
    file_name     TEXT    NOT NULL,              -- name inside the torrent and in the WebSeed URL
    media_path    TEXT    NOT NULL,              -- file under the data dir's media/
    thumbnail     TEXT,                          -- file under thumbnails/, when made
    processing    TEXT    NOT NULL DEFAULT '',   -- what the pod did to the upload, for people
    views         INTEGER NOT NULL DEFAULT 0,
    owner         TEXT    NOT NULL DEFAULT 'admin',
    origin_pod    TEXT,                          -- NULL = this pod
    created_at    TEXT    NOT NULL,              -- RFC 3339 UTC
    updated_at    TEXT    NOT NULL
);
CREATE INDEX videos_created_at ON videos (created_at);

-- Full-text search over what people type: ranked with bm25, prefix queries for as-you-type.
CREATE VIRTUAL TABLE videos_fts USING fts5(
    name, description, tags,
    content = 'videos', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN
    INSERT INTO videos_fts (rowid, name, description, tags)
    VALUES (new.id, new.name, new.description, new.tags);
END;
CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, name, description, tags)
    VALUES ('delete', old.id, old.name, old.description, old.tags);
END;
CREATE TRIGGER videos_fts_update AFTER UPDATE OF name, description, tags ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, name, description, tags)
    VALUES ('delete', old.id, old.name, old.description, old.tags);
    INSERT INTO videos_fts (rowid, name, description, tags)
    VALUES (new.id, new.name, new.description, new.tags);
END;
