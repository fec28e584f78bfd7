-- The customer portal (issue 22): a card holder's or pinless customer's own login, one per
-- account (the password's argon2id hash only), and its browser sessions, kept as the console's
-- are (the cookie's SHA-256, never the cookie). Identical on both backends; keep in step with
-- the other directory's 0019_customer_portal.sql.
CREATE TABLE customer_logins (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE customer_sessions (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX customer_sessions_account ON customer_sessions (account_id);
