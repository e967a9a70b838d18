-- Finer statistics for string index values. With the default target (100 histogram
-- buckets) over a million names, PostgreSQL's estimate for one name prefix can fall to
-- 1 row, and a chain such as `subject:Patient.name=gagnon` then takes a nested-loop
-- plan that walks every flagged reference: 39 ms instead of 3.5 ms for that statement
-- at 1 M resources after a fresh ANALYZE (benches/README.md). SQLite has no per-column
-- statistics target, so this migration has no SQLite counterpart.
ALTER TABLE idx_string ALTER COLUMN normalized SET STATISTICS 1000;
