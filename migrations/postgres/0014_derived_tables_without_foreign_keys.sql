-- The derived tables (search index, patient compartment, result visibility) lose their
-- foreign keys to `resources`. Their rows are written only by the write path, in the
-- transaction that writes their resource, and `resources` rows are never deleted, so
-- the keys could only catch a bug there; each inserted row paid a locking query on its
-- parent (`SELECT … FOR KEY SHARE`, some twenty per resource). Import of Synthea-style
-- Bundles: 813 → 1,221 resources/s. `resource_versions` keeps its key. tests/crash.rs
-- checks after every kill that each index table holds exactly the rows the stored
-- resources yield.
ALTER TABLE idx_string DROP CONSTRAINT IF EXISTS idx_string_pk_fkey;
ALTER TABLE idx_token DROP CONSTRAINT IF EXISTS idx_token_pk_fkey;
ALTER TABLE idx_reference DROP CONSTRAINT IF EXISTS idx_reference_pk_fkey;
ALTER TABLE idx_date DROP CONSTRAINT IF EXISTS idx_date_pk_fkey;
ALTER TABLE idx_number DROP CONSTRAINT IF EXISTS idx_number_pk_fkey;
ALTER TABLE idx_quantity DROP CONSTRAINT IF EXISTS idx_quantity_pk_fkey;
ALTER TABLE idx_uri DROP CONSTRAINT IF EXISTS idx_uri_pk_fkey;
ALTER TABLE patient_compartment DROP CONSTRAINT IF EXISTS patient_compartment_pk_fkey;
ALTER TABLE result_visibility DROP CONSTRAINT IF EXISTS result_visibility_pk_fkey;
