-- Customer self-service (issue 22). A caller ID a customer registers from the portal waits in
-- caller_id_claims until the phone proves itself: a call from that number keys the code the
-- portal showed (kept as the PIN key's HMAC of number and code, never the code) before it
-- expires. Self sign-up logs in by e-mail (lower case, one account an address); a signed-up
-- customer may name the referral code of the customer who sent them (referrals), and both are
-- rewarded once, in the transaction of the newcomer's first paid recharge. Identical on both
-- backends; keep in step with the other directory's 0022_self_service.sql.
CREATE TABLE caller_id_claims (
    number TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    code_hash TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (number, account_id)
);
ALTER TABLE customer_logins ADD COLUMN email TEXT;
CREATE UNIQUE INDEX customer_logins_email ON customer_logins (email);
CREATE TABLE referral_codes (
    code TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL UNIQUE REFERENCES accounts (id)
);
CREATE TABLE referrals (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    referrer_id BIGINT NOT NULL REFERENCES accounts (id),
    created_at_ms BIGINT NOT NULL,
    rewarded_at_ms BIGINT
);
CREATE TABLE referral_rewards (
    currency TEXT PRIMARY KEY,
    referrer_micros BIGINT NOT NULL,
    newcomer_micros BIGINT NOT NULL
);
