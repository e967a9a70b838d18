-- The SMART authorization server (server/src/auth). Every piece of auth state lives
-- here, so several Carnet processes on one database behave as one server. Instants are
-- epoch microseconds (UTC), as in 0001. Secrets (codes, refresh tokens, client secrets)
-- are stored only as SHA-256 hashes (passwords as Argon2id PHC strings).

-- The server's token signing key. One row per slot: the first process to start inserts
-- 'current' with ON CONFLICT DO NOTHING, and every process then reads the winner.
CREATE TABLE auth_keys (
    slot        TEXT    PRIMARY KEY,
    kid         TEXT    NOT NULL,
    alg         TEXT    NOT NULL,
    private_der BYTEA   NOT NULL, -- PKCS#8
    public_jwk  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE auth_clients (
    client_id     TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL, -- public | confidential-symmetric | confidential-asymmetric
    secret_hash   TEXT,
    jwks          TEXT,             -- JWK Set (JSON) for private_key_jwt
    redirect_uris TEXT    NOT NULL, -- JSON array
    scopes        TEXT    NOT NULL, -- space separated, the most it may be granted
    created_at    BIGINT  NOT NULL
);

-- `jti`s of client assertions already used (replay protection), kept until they expire.
CREATE TABLE auth_used_jtis (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE auth_accounts (
    id              TEXT    PRIMARY KEY,
    fhir_user       TEXT    NOT NULL UNIQUE, -- Patient/X, RelatedPerson/R, Practitioner/P
    links           TEXT    NOT NULL DEFAULT '[]', -- more RelatedPersons of the same person (JSON)
    username        TEXT    UNIQUE,
    password_hash   TEXT,
    contact         TEXT    NOT NULL,        -- where the sender delivers codes
    lang            TEXT    NOT NULL,
    status          TEXT    NOT NULL,        -- invited | active | deactivated
    failed_attempts BIGINT  NOT NULL DEFAULT 0,
    locked          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL
);

-- Single-use codes: activation (A-000000), sign-in (6 digits), password reset,
-- authorization codes. `subject` is what the code is bound to (an account, or a
-- pending authorization request); `data` holds what redeeming it needs (JSON).
CREATE TABLE auth_codes (
    code_hash  TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT ,
    created_at BIGINT  NOT NULL
);
CREATE INDEX auth_codes_subject ON auth_codes (subject, kind);

-- A browser sign-in in progress at the authorize endpoint, identified by a random
-- handle carried in the pages' hidden `tx` field.
CREATE TABLE auth_requests (
    id         TEXT    PRIMARY KEY,
    params     TEXT    NOT NULL, -- client_id, redirect_uri, scope, state, PKCE, launch (JSON)
    account_id TEXT,
    stage      TEXT    NOT NULL, -- password | code | patient
    expires_at BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);

-- One sign-in (or one client_credentials grant): access tokens carry its id (`sid`).
CREATE TABLE auth_sessions (
    id          TEXT    PRIMARY KEY,
    account_id  TEXT,
    client_id   TEXT    NOT NULL,
    grant_data  TEXT    NOT NULL, -- scope, fhirUser, patient (JSON)
    created_at  BIGINT  NOT NULL,
    last_active BIGINT  NOT NULL,
    revoked_at  BIGINT 
);
CREATE INDEX auth_sessions_account ON auth_sessions (account_id);

-- Refresh tokens rotate: each use marks the row used and issues a new one; presenting a
-- used one again revokes the whole session (it was stolen or replayed).
CREATE TABLE auth_refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT ,
    created_at BIGINT  NOT NULL
);

-- Access tokens revoked one by one (RFC 7009), kept until they would have expired.
CREATE TABLE auth_revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);
