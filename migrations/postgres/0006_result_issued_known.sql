-- Whether result_visibility.issued_at came from the result's `issued` (TRUE) or from
-- the instant it was first stored (FALSE): a later version without `issued` keeps the
-- first instant. A column rather than a bound flag so that many results can be
-- upserted in one statement (store::bulk).
ALTER TABLE result_visibility ADD COLUMN issued_known BOOLEAN NOT NULL DEFAULT TRUE;
