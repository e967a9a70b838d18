-- Bulk Data $export (docs/bulk.md): the job queue and its output, in the database so
-- that any Carnet process can run a job, resume it after a restart and serve its files.
-- A job is claimed with a lease (lease_owner, lease_until: epoch µs) renewed with every
-- part written; a lease that runs out lets another process take the job over from its
-- cursor (type_index, cursor_pk), which moves in the transaction that stores each part.
CREATE TABLE export_jobs (
    id               TEXT    PRIMARY KEY,
    client_id        TEXT    NOT NULL,
    scopes           TEXT    NOT NULL, -- the kick-off token's scopes: the policy of every page
    request          TEXT    NOT NULL,
    level            TEXT    NOT NULL, -- system | patient | group
    group_id         TEXT,
    types            TEXT    NOT NULL, -- JSON array, in export order
    type_filters     TEXT    NOT NULL, -- JSON object: type -> [query string]
    since            BIGINT,
    transaction_time BIGINT  NOT NULL,
    max_pk           BIGINT  NOT NULL, -- resources created after the kick-off are left out
    state            TEXT    NOT NULL, -- queued | done | failed
    type_index       BIGINT  NOT NULL DEFAULT 0,
    cursor_pk        BIGINT  NOT NULL DEFAULT 0,
    exported         BIGINT  NOT NULL DEFAULT 0,
    parts            BIGINT  NOT NULL DEFAULT 0,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      BIGINT,
    error            TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX export_jobs_queued ON export_jobs (state, created_at);

-- One output file per row: up to a part's worth of NDJSON lines of one type.
CREATE TABLE export_files (
    job_id   TEXT   NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    n        BIGINT NOT NULL,
    res_type TEXT   NOT NULL,
    count    BIGINT NOT NULL,
    content  BYTEA  NOT NULL,
    PRIMARY KEY (job_id, n)
);
-- Parts are megabytes of NDJSON kept for a day: compressing each (pglz, in the write
-- transaction) would cost more time than the space it saves is worth.
ALTER TABLE export_files ALTER COLUMN content SET STORAGE EXTERNAL;

-- The members of a Group export, fixed at kick-off.
CREATE TABLE export_patients (
    job_id     TEXT NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (job_id, patient_id)
);

-- Pages of an export read one type in pk order: index resources_type_pk (0010).
