-- Observation's `combo-*` search parameters are unions of other parameters (`combo-code`
-- is `code | component.code`): their values are those parameters' rows, which searches
-- now read (carnet_search::Registry::stored_as), so writes no longer store them again.
-- The rows stored before are dropped: a third of the token rows of Synthea-style data.
DELETE FROM idx_token WHERE res_type = 'Observation' AND param LIKE 'combo-%';
DELETE FROM idx_quantity WHERE res_type = 'Observation' AND param LIKE 'combo-%';
