-- An account's recurring plan (seed 000 maintenance fee, seed 003 package billing). Identical
-- on both backends; keep in step with the other directory's 0007_account_plans.sql.
CREATE TABLE account_plans (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    -- Charged every maintenance_every_ms from the card's first use (an account without a
    -- card: from its creation); each period posts once, keyed 'maintenance:<instant>'.
    maintenance_fee_micros BIGINT NOT NULL DEFAULT 0,
    maintenance_every_ms BIGINT NOT NULL DEFAULT 0,
    -- The last fee instant charged (0: none yet).
    maintenance_charged_until_ms BIGINT NOT NULL DEFAULT 0,
    -- Free seconds each package period on destinations starting with one of the
    -- comma-separated prefixes, used before money.
    package_seconds BIGINT NOT NULL DEFAULT 0,
    package_prefixes TEXT NOT NULL DEFAULT '',
    package_every_ms BIGINT NOT NULL DEFAULT 0,
    package_used_seconds BIGINT NOT NULL DEFAULT 0,
    package_period_start_ms BIGINT NOT NULL DEFAULT 0
);
