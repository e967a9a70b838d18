-- AuditEvent's `patient` search parameter is `agent.who.where(resolve() is Patient) |
-- entity.what.where(resolve() is Patient)`: its values are the `agent` and `entity` rows
-- that reference a Patient, which searches now read (carnet_search::Registry::restricted_to),
-- so writes no longer store them again. A search's AuditEvent names up to 50 patients:
-- a third of its reference rows. The rows stored before are dropped.
DELETE FROM idx_reference WHERE res_type = 'AuditEvent' AND param = 'patient';
