-- Logging into the customer portal with a phone (issue 22): a caller keys *01 in the IVR and
-- hears a one-time code, kept here as the PIN key's HMAC of number and code (never the code),
-- bound to the number called from and the account the call was on. One live code a number: a
-- new one replaces it; a login uses it up. Identical on both backends; keep in step with the
-- other directory's 0027_portal_codes.sql.
CREATE TABLE portal_login_codes (
    number TEXT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    code_hash TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
