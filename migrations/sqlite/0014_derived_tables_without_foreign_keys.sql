-- The derived tables (search index, patient compartment, result visibility) lose their
-- foreign keys to `resources`. Their rows are written only by the write path, in the
-- transaction that writes their resource, and `resources` rows are never deleted, so
-- the keys could only catch a bug there; they cost a lookup of the parent per row, some
-- twenty rows per resource (import of Synthea-style Bundles: 1,255 → 1,433 resources/s
-- with enforcement off; on PostgreSQL, whose check is a locking query per row, 813 →
-- 1,221). `resource_versions` keeps its key. tests/crash.rs checks after every kill that
-- each index table holds exactly the rows the stored resources yield.
--
-- SQLite cannot drop a constraint: each table is rebuilt under its name with its
-- indexes. The planner statistics of those indexes (sqlite_stat1, by table and index
-- name) stay as they were: a rename does not move them and the names come back.

ALTER TABLE idx_string RENAME TO idx_string_keyed;
CREATE TABLE idx_string (
    pk         INTEGER NOT NULL,
    res_type   TEXT    NOT NULL,
    param      TEXT    NOT NULL,
    grp        INTEGER,
    normalized TEXT    NOT NULL COLLATE BINARY,
    exact      TEXT    NOT NULL
);
INSERT INTO idx_string (pk, res_type, param, grp, normalized, exact) SELECT pk, res_type, param, grp, normalized, exact FROM idx_string_keyed ORDER BY rowid;
DROP TABLE idx_string_keyed;
CREATE INDEX idx_string_value ON idx_string (res_type, param, normalized COLLATE BINARY, pk);
CREATE INDEX idx_string_pk ON idx_string (pk);

ALTER TABLE idx_token RENAME TO idx_token_keyed;
CREATE TABLE idx_token (
    pk          INTEGER NOT NULL,
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    grp         INTEGER,
    system      TEXT,
    code        TEXT,
    text        TEXT COLLATE BINARY,
    type_system TEXT,
    type_code   TEXT,
    rpatient    TEXT,
    rdate_low   INTEGER,
    rdate_high  INTEGER,
    rflags      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO idx_token (pk, res_type, param, grp, system, code, text, type_system, type_code, rpatient, rdate_low, rdate_high, rflags) SELECT pk, res_type, param, grp, system, code, text, type_system, type_code, rpatient, rdate_low, rdate_high, rflags FROM idx_token_keyed ORDER BY rowid;
DROP TABLE idx_token_keyed;
CREATE INDEX idx_token_value ON idx_token (res_type, param, code, system, pk);
CREATE INDEX idx_token_pk ON idx_token (pk);
CREATE INDEX idx_token_patient ON idx_token (res_type, param, code, system, rpatient, pk)
    WHERE rpatient IS NOT NULL;
CREATE INDEX idx_token_dated ON idx_token (res_type, param, code, system, rdate_low, rdate_high, pk)
    WHERE rdate_low IS NOT NULL;
CREATE INDEX idx_token_flagged ON idx_token (res_type, param, code, system, pk) WHERE rflags <> 0;

ALTER TABLE idx_reference RENAME TO idx_reference_keyed;
CREATE TABLE idx_reference (
    pk          INTEGER NOT NULL,
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    grp         INTEGER,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT,
    version     TEXT,
    id_system   TEXT,
    id_value    TEXT,
    rdate_low   INTEGER,
    rdate_high  INTEGER,
    rflags      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO idx_reference (pk, res_type, param, grp, target_type, target_id, url, version, id_system, id_value, rdate_low, rdate_high, rflags) SELECT pk, res_type, param, grp, target_type, target_id, url, version, id_system, id_value, rdate_low, rdate_high, rflags FROM idx_reference_keyed ORDER BY rowid;
DROP TABLE idx_reference_keyed;
CREATE INDEX idx_reference_value ON idx_reference (res_type, param, target_type, target_id, pk);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id, param);
CREATE INDEX idx_reference_pk ON idx_reference (pk);
CREATE INDEX idx_reference_dated ON idx_reference (res_type, param, target_type, target_id, rdate_low, rdate_high, pk)
    WHERE rdate_low IS NOT NULL;
CREATE INDEX idx_reference_flagged ON idx_reference (res_type, param, target_type, target_id, pk) WHERE rflags <> 0;

ALTER TABLE idx_date RENAME TO idx_date_keyed;
CREATE TABLE idx_date (
    pk       INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      INTEGER,
    low      INTEGER NOT NULL, -- epoch µs UTC, inclusive
    high     INTEGER NOT NULL  -- epoch µs UTC, inclusive
);
INSERT INTO idx_date (pk, res_type, param, grp, low, high) SELECT pk, res_type, param, grp, low, high FROM idx_date_keyed ORDER BY rowid;
DROP TABLE idx_date_keyed;
CREATE INDEX idx_date_value ON idx_date (res_type, param, low, high, pk);
CREATE INDEX idx_date_pk ON idx_date (pk);

ALTER TABLE idx_number RENAME TO idx_number_keyed;
CREATE TABLE idx_number (
    pk       INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      INTEGER,
    value    REAL,
    low      REAL    NOT NULL,
    high     REAL    NOT NULL
);
INSERT INTO idx_number (pk, res_type, param, grp, value, low, high) SELECT pk, res_type, param, grp, value, low, high FROM idx_number_keyed ORDER BY rowid;
DROP TABLE idx_number_keyed;
CREATE INDEX idx_number_value ON idx_number (res_type, param, low, high, pk);
CREATE INDEX idx_number_pk ON idx_number (pk);

ALTER TABLE idx_quantity RENAME TO idx_quantity_keyed;
CREATE TABLE idx_quantity (
    pk       INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      INTEGER,
    value    REAL,
    low      REAL    NOT NULL,
    high     REAL    NOT NULL,
    system   TEXT,
    code     TEXT,
    unit     TEXT
);
INSERT INTO idx_quantity (pk, res_type, param, grp, value, low, high, system, code, unit) SELECT pk, res_type, param, grp, value, low, high, system, code, unit FROM idx_quantity_keyed ORDER BY rowid;
DROP TABLE idx_quantity_keyed;
CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, code, low, high, pk);
CREATE INDEX idx_quantity_pk ON idx_quantity (pk);

ALTER TABLE idx_uri RENAME TO idx_uri_keyed;
CREATE TABLE idx_uri (
    pk       INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      INTEGER,
    uri      TEXT    NOT NULL COLLATE BINARY
);
INSERT INTO idx_uri (pk, res_type, param, grp, uri) SELECT pk, res_type, param, grp, uri FROM idx_uri_keyed ORDER BY rowid;
DROP TABLE idx_uri_keyed;
CREATE INDEX idx_uri_value ON idx_uri (res_type, param, uri COLLATE BINARY, pk);
CREATE INDEX idx_uri_pk ON idx_uri (pk);

ALTER TABLE patient_compartment RENAME TO patient_compartment_keyed;
CREATE TABLE patient_compartment (
    pk         INTEGER NOT NULL,
    patient_id TEXT    NOT NULL,
    PRIMARY KEY (pk, patient_id)
);
INSERT INTO patient_compartment (pk, patient_id) SELECT pk, patient_id FROM patient_compartment_keyed ORDER BY rowid;
DROP TABLE patient_compartment_keyed;
CREATE INDEX patient_compartment_patient ON patient_compartment (patient_id, pk);

ALTER TABLE result_visibility RENAME TO result_visibility_keyed;
CREATE TABLE result_visibility (
    pk           INTEGER PRIMARY KEY,
    sensitive    INTEGER NOT NULL,
    status_ok    INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL, -- epoch µs: `issued`, else first stored
    released     INTEGER NOT NULL,
    issued_known INTEGER NOT NULL DEFAULT 1
);
INSERT INTO result_visibility (pk, sensitive, status_ok, issued_at, released, issued_known) SELECT pk, sensitive, status_ok, issued_at, released, issued_known FROM result_visibility_keyed ORDER BY rowid;
DROP TABLE result_visibility_keyed;

