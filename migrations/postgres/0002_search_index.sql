-- Search index: one typed table per parameter type, rows written in the transaction of
-- the version they describe and removed when the resource is deleted. `grp` ties the
-- components of one composite value together (NULL for plain values). Text compared
-- by range (prefix search) uses the "C" collation (byte order, which for UTF-8 is code point order), which is what
-- the query side's "next string" upper bound assumes.

CREATE TABLE idx_string (
    pk         BIGINT NOT NULL REFERENCES resources (pk),
    res_type   TEXT    NOT NULL,
    param      TEXT    NOT NULL,
    grp        BIGINT,
    normalized TEXT    NOT NULL COLLATE "C",
    exact      TEXT    NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (res_type, param, normalized, pk);
CREATE INDEX idx_string_pk ON idx_string (pk);

CREATE TABLE idx_token (
    pk          BIGINT NOT NULL REFERENCES resources (pk),
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    grp         BIGINT,
    system      TEXT,
    code        TEXT,
    text        TEXT COLLATE "C",
    type_system TEXT,
    type_code   TEXT
);
CREATE INDEX idx_token_value ON idx_token (res_type, param, code, system, pk);
CREATE INDEX idx_token_pk ON idx_token (pk);

CREATE TABLE idx_reference (
    pk          BIGINT NOT NULL REFERENCES resources (pk),
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    grp         BIGINT,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT,
    version     TEXT,
    id_system   TEXT,
    id_value    TEXT
);
CREATE INDEX idx_reference_value ON idx_reference (res_type, param, target_type, target_id, pk);
-- Reverse direction: _revinclude, _has and compartments start from the target.
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id, param);
CREATE INDEX idx_reference_pk ON idx_reference (pk);

CREATE TABLE idx_date (
    pk       BIGINT NOT NULL REFERENCES resources (pk),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      BIGINT,
    low      BIGINT  NOT NULL, -- epoch µs UTC, inclusive
    high     BIGINT  NOT NULL  -- epoch µs UTC, inclusive
);
CREATE INDEX idx_date_value ON idx_date (res_type, param, low, high, pk);
CREATE INDEX idx_date_pk ON idx_date (pk);

CREATE TABLE idx_number (
    pk       BIGINT NOT NULL REFERENCES resources (pk),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      BIGINT,
    value    DOUBLE PRECISION,
    low      DOUBLE PRECISION    NOT NULL,
    high     DOUBLE PRECISION    NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (res_type, param, low, high, pk);
CREATE INDEX idx_number_pk ON idx_number (pk);

CREATE TABLE idx_quantity (
    pk       BIGINT NOT NULL REFERENCES resources (pk),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      BIGINT,
    value    DOUBLE PRECISION,
    low      DOUBLE PRECISION    NOT NULL,
    high     DOUBLE PRECISION    NOT NULL,
    system   TEXT,
    code     TEXT,
    unit     TEXT
);
CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, code, low, high, pk);
CREATE INDEX idx_quantity_pk ON idx_quantity (pk);

CREATE TABLE idx_uri (
    pk       BIGINT NOT NULL REFERENCES resources (pk),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    grp      BIGINT,
    uri      TEXT    NOT NULL COLLATE "C"
);
CREATE INDEX idx_uri_value ON idx_uri (res_type, param, uri, pk);
CREATE INDEX idx_uri_pk ON idx_uri (pk);
