-- SIP subscribers (issue 16): softphones and IP phones that register with digest
-- authentication and call without the IVR, billed to their account. The password itself is
-- never stored: ha1 is MD5(username:realm:password), what a digest check needs (like
-- Kamailio's subscriber.ha1); changing [subscribers] realm needs new passwords. caller_id is
-- what the subscriber's calls present to carriers. Identical on both backends but for the key's
-- spelling; keep in step with the other directory's 0015_sip_subscribers.sql.
CREATE TABLE sip_subscribers (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    username TEXT NOT NULL UNIQUE,
    realm TEXT NOT NULL,
    ha1 TEXT NOT NULL,
    caller_id TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX sip_subscribers_account ON sip_subscribers (account_id);
