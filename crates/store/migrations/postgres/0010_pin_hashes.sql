-- PINs at rest (issue 18): cards keep HMAC-SHA256(key, PIN) as 'h1:<hex>', never the PIN;
-- the key is outside the database. Rows written before this migration still hold plain PINs
-- until the store's first open with a key rehashes them (Store::hash_plain_pins). The UNIQUE
-- index moves with the column. ledger_meta keeps the key's check value, so a ledger opened
-- with another key is refused instead of failing every PIN. Identical on both backends; keep
-- in step with the other directory's 0010_pin_hashes.sql.
ALTER TABLE cards RENAME COLUMN pin TO pin_hash;
CREATE TABLE ledger_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
