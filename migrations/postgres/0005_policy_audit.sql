-- Access policy (docs/policy.md): tables maintained when resources are written, so that
-- every rule is an index lookup in the SQL that fetches resources.

-- R1: which patients' compartments a resource is in (CompartmentDefinition-patient;
-- a Patient is in its own). Kept when a resource is deleted: its old versions stay
-- governed by the same compartment.
CREATE TABLE patient_compartment (
    pk         BIGINT NOT NULL REFERENCES resources (pk),
    patient_id TEXT    NOT NULL,
    PRIMARY KEY (pk, patient_id)
);
CREATE INDEX patient_compartment_patient ON patient_compartment (patient_id, pk);

-- R2/R3: what decides when an Observation or DiagnosticReport is published. The delay
-- is compared with "now" at query time, never stored.
CREATE TABLE result_visibility (
    pk        BIGINT PRIMARY KEY REFERENCES resources (pk),
    sensitive BOOLEAN NOT NULL,
    status_ok BOOLEAN NOT NULL,
    issued_at BIGINT NOT NULL, -- epoch µs: `issued`, else first stored
    released  BOOLEAN NOT NULL
);

-- R3: patients who chose to see results at once (their newest active preference Consent).
CREATE TABLE patient_result_preference (
    patient_id TEXT PRIMARY KEY,
    immediate  BOOLEAN NOT NULL,
    consent_pk BIGINT NOT NULL
);

-- R4: refusals in force (newest active privacy Consent is a deny).
CREATE TABLE patient_refusal (
    patient_id TEXT PRIMARY KEY,
    refused_at BIGINT NOT NULL, -- epoch µs the refusal was recorded
    consent_pk BIGINT NOT NULL
);

-- R4: practitioners who consulted a patient's record, from allowed audited reads.
CREATE TABLE prior_access (
    practitioner_id TEXT    NOT NULL,
    patient_id      TEXT    NOT NULL,
    first_at        BIGINT NOT NULL,
    PRIMARY KEY (practitioner_id, patient_id)
);
