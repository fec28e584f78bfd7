-- DID forwarding (seed 003) and the reason a call attempt ended. Identical on both backends;
-- keep in step with the other directory's 0002_forwarding.sql.

-- The preset destination of a pinless DID-forwarding account (as dialled or E.164 digits);
-- NULL for accounts that are not forwarded.
ALTER TABLE accounts ADD COLUMN forward_destination TEXT;

-- Why the attempt ended, e.g. 'credit_exhausted', 'caller_hung_up', 'busy'.
ALTER TABLE cdrs ADD COLUMN disconnect_cause TEXT;
