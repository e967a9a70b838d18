-- Access policy (docs/policy.md): tables maintained when resources are written, so that
-- every rule is an index lookup in the SQL that fetches resources.

-- R1: which patients' compartments a resource is in (CompartmentDefinition-patient;
-- a Patient is in its own). Kept when a resource is deleted: its old versions stay
-- governed by the same compartment.
CREATE TABLE patient_compartment (
    pk         INTEGER NOT NULL REFERENCES resources (pk),
    patient_id TEXT    NOT NULL,
    PRIMARY KEY (pk, patient_id)
);
CREATE INDEX patient_compartment_patient ON patient_compartment (patient_id, pk);

-- R2/R3: what decides when an Observation or DiagnosticReport is published. The delay
-- is compared with "now" at query time, never stored.
CREATE TABLE result_visibility (
    pk        INTEGER PRIMARY KEY REFERENCES resources (pk),
    sensitive INTEGER NOT NULL,
    status_ok INTEGER NOT NULL,
    issued_at INTEGER NOT NULL, -- epoch µs: `issued`, else first stored
    released  INTEGER NOT NULL
);

-- R3: patients who chose to see results at once (their newest active preference Consent).
CREATE TABLE patient_result_preference (
    patient_id TEXT PRIMARY KEY,
    immediate  INTEGER NOT NULL,
    consent_pk INTEGER NOT NULL
);

-- R4: refusals in force (newest active privacy Consent is a deny).
CREATE TABLE patient_refusal (
    patient_id TEXT PRIMARY KEY,
    refused_at INTEGER NOT NULL, -- epoch µs the refusal was recorded
    consent_pk INTEGER NOT NULL
);

-- R4: practitioners who consulted a patient's record, from allowed audited reads.
CREATE TABLE prior_access (
    practitioner_id TEXT    NOT NULL,
    patient_id      TEXT    NOT NULL,
    first_at        INTEGER NOT NULL,
    PRIMARY KEY (practitioner_id, patient_id)
);
