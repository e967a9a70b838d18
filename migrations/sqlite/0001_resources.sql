-- One row per logical resource: where its current version is. Content lives only in
-- resource_versions, so every version is stored exactly once.
CREATE TABLE resources (
    pk           INTEGER PRIMARY KEY,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL, -- epoch microseconds, UTC
    deleted      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (res_type, res_id)
);

-- seq gives one global order of writes: system and type history page on it.
CREATE TABLE resource_versions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    pk           INTEGER NOT NULL REFERENCES resources (pk),
    res_type     TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method       TEXT    NOT NULL,
    content      BLOB, -- NULL for a delete
    UNIQUE (pk, version)
);
CREATE INDEX resource_versions_type_seq ON resource_versions (res_type, seq);
CREATE INDEX resource_versions_last_updated ON resource_versions (last_updated);
