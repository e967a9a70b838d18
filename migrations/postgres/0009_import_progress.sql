-- Bulk import (`carnet import`): how far each input file got, by a hash of its content,
-- updated in the transaction of every chunk it stores so that a resumed import skips
-- exactly the units already kept.
CREATE TABLE import_progress (
    source_key TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    done_units BIGINT  NOT NULL,
    resources  BIGINT  NOT NULL,
    rejected   BIGINT  NOT NULL,
    finished   BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);
