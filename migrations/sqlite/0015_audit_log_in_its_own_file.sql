-- The audit log moves to a file of its own (migrations/sqlite-audit-log). Rows an older
-- version left here (a server killed with records not yet projected) are moved there
-- when the store opens, then this table is dropped (store::legacy_log).
ALTER TABLE audit_log RENAME TO audit_log_moved;
