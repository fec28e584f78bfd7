-- The caller's services over the IVR (issue 21). Vouchers: single-use recharge codes made in
-- batches like cards, kept as keyed hashes like PINs ('v1:' HMAC of the code, never the
-- code); used_at_ms is set by one conditional UPDATE, so a voucher credits exactly once even
-- when two calls enter it together. Speed dials: per account, slots 1-9. Remembered
-- languages: the last IVR language per account and per caller ID (for callers not yet
-- known when the language menu plays). Identical on both backends but for the key's
-- spelling; keep in step with the other directory's 0014_caller_services.sql.
CREATE TABLE voucher_batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    value_micros BIGINT NOT NULL,
    voucher_count BIGINT NOT NULL,
    code_length BIGINT NOT NULL,
    expires_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE vouchers (
    id INTEGER PRIMARY KEY,
    batch_id BIGINT NOT NULL REFERENCES voucher_batches (id),
    code_hash TEXT NOT NULL UNIQUE,
    value_micros BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    expires_at_ms BIGINT,
    used_at_ms BIGINT,
    used_by_account_id BIGINT REFERENCES accounts (id),
    used_call_id TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX vouchers_batch ON vouchers (batch_id);
CREATE TABLE speed_dials (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    slot BIGINT NOT NULL,
    number TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, slot)
);
CREATE TABLE caller_languages (
    number TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
ALTER TABLE accounts ADD COLUMN ivr_language TEXT;
