-- An account's own destination lists (issue 20, toll fraud): JSON of
-- billing::DestinationPolicy ({"allowed": [...], "denied": [...]}), checked with its tariff's
-- on every authorization; NULL: none of its own. Identical on both backends; keep in step
-- with the other directory's 0009_account_destinations.sql.
ALTER TABLE accounts ADD COLUMN destinations_json TEXT;
