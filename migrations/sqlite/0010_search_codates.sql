-- Search at volume (docs/design.md, "Search plans"): token and reference index rows
-- carry facts of the resource they belong to, so that the commonest combinations are
-- one index range instead of an intersection of large sets:
--   rpatient            the single Patient of the resource's `patient` parameter
--                       (token rows): patient + code, chains to Patient, _has
--   rdate_low/high      the single value of its `date` parameter when that value spans
--                       at most 400 days: code + date, patient + date
--   rflags              1: it has a `date` value that is not folded (longer, or
--                       several values); 2: several patients. Such rows are searched
--                       the general way, through their own small indexes.
ALTER TABLE idx_token ADD COLUMN rpatient TEXT;
ALTER TABLE idx_token ADD COLUMN rdate_low INTEGER;
ALTER TABLE idx_token ADD COLUMN rdate_high INTEGER;
ALTER TABLE idx_token ADD COLUMN rflags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idx_reference ADD COLUMN rdate_low INTEGER;
ALTER TABLE idx_reference ADD COLUMN rdate_high INTEGER;
ALTER TABLE idx_reference ADD COLUMN rflags INTEGER NOT NULL DEFAULT 0;

CREATE INDEX idx_token_patient ON idx_token (res_type, param, code, system, rpatient, pk)
    WHERE rpatient IS NOT NULL;
CREATE INDEX idx_token_dated ON idx_token (res_type, param, code, system, rdate_low, rdate_high, pk)
    WHERE rdate_low IS NOT NULL;
CREATE INDEX idx_token_flagged ON idx_token (res_type, param, code, system, pk) WHERE rflags <> 0;
CREATE INDEX idx_reference_dated ON idx_reference (res_type, param, target_type, target_id, rdate_low, rdate_high, pk)
    WHERE rdate_low IS NOT NULL;
CREATE INDEX idx_reference_flagged ON idx_reference (res_type, param, target_type, target_id, pk) WHERE rflags <> 0;
-- Resources of one type in creation order: searches that filter each resource of a
-- type with correlated conditions (_has) walk it and stop at the page's end.
CREATE INDEX resources_type_pk ON resources (res_type, pk);
