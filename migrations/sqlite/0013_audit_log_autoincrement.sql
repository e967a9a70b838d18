-- Sequence numbers of the audit log are never reused. A plain INTEGER PRIMARY KEY takes
-- max(seq) + 1, so once a projector had emptied the log the next logged row got a number
-- an earlier, already projected row had had. A second projector on the same file (another
-- Carnet process, or a test's in-process server) that had read the earlier row deleted
-- the new one by its number and stored the earlier event twice: an answered request lost
-- its AuditEvent (seen once in tests/crash.rs). AUTOINCREMENT never hands a number out
-- twice; PostgreSQL's BIGSERIAL already does not.
CREATE TABLE audit_log_new (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    event BLOB    NOT NULL
);
INSERT INTO audit_log_new (seq, event) SELECT seq, event FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
