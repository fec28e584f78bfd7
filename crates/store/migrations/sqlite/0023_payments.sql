-- Card payments through a payment provider (issue 22). A row is written before the provider
-- is asked for a checkout (so a payment the provider confirms is always known here), gets the
-- provider's session id, and turns 'paid' once, in the transaction that credits the account:
-- a replayed or repeated notification finds no 'pending' row and credits nothing. Identical
-- on both backends; keep in step with the other directory's 0023_payments.sql.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount_micros BIGINT NOT NULL,
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    provider_session TEXT UNIQUE,
    created_at_ms BIGINT NOT NULL,
    paid_at_ms BIGINT
);
CREATE INDEX payments_account ON payments (account_id);
