-- The audit log of a SQLite store, in a file of its own beside the database
-- (store::audit_log_path; docs/design.md, "The audit log"): one row per audited request,
-- written by the group commit before the response leaves, holding the AuditEvent (with
-- its id) as it will be stored. The projector stores each row's AuditEvent in the
-- database, skipping ids already there, and then deletes the row.
-- Sequence numbers are never handed out twice (AUTOINCREMENT): a projector deletes the
-- rows it read by number, and a reused number would delete a row it never read.
CREATE TABLE audit_log (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    event BLOB    NOT NULL
);
