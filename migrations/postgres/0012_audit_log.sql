-- The audit trail's durable log (docs/policy.md, "Audit"): one row per audited request,
-- written by the group commit before the response leaves, holding the AuditEvent as it
-- will be stored. The projector turns rows into stored AuditEvent resources (search
-- index, compartment) and deletes them in the same transaction; anything that can read
-- AuditEvents projects the rows logged before it first.
CREATE TABLE audit_log (
    seq   BIGSERIAL PRIMARY KEY,
    event BYTEA     NOT NULL
);
