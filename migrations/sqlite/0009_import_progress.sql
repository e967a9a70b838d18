-- Bulk import (`carnet import`): how far each input file got, by a hash of its content,
-- updated in the transaction of every chunk it stores so that a resumed import skips
-- exactly the units already kept.
CREATE TABLE import_progress (
    source_key TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    done_units INTEGER NOT NULL,
    resources  INTEGER NOT NULL,
    rejected   INTEGER NOT NULL,
    finished   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
