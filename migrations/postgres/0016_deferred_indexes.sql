-- The search index's indexes that a bulk import dropped, to build them once when it
-- ends instead of entry by entry (store::deferred_indexes). Written in the transaction
-- that drops them: an import killed before the end leaves here what to build, and the
-- next `carnet serve` or `carnet import` builds it.
CREATE TABLE deferred_indexes (
    name TEXT PRIMARY KEY,
    ddl  TEXT NOT NULL
);
