-- Resellers (issue 16): the vendor (the operator) sells to resellers, a reseller to
-- sub-resellers and customers. Each reseller keeps its money on an account of its own
-- (balance, status, concurrency limit, and the tariff it buys at: what the level above charges
-- it); credit_limit_micros lets its balance go that far below zero. A customer account names its
-- reseller. Every call of a reseller's customer also holds credit on each reseller above it
-- (reservation_levels, depth 1 = the customer's own reseller), settled with the call in its
-- transaction at that level's price. Identical on both backends but for the key's spelling;
-- keep in step with the other directory's 0016_resellers.sql.
CREATE TABLE resellers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    parent_id BIGINT REFERENCES resellers (id),
    account_id BIGINT NOT NULL UNIQUE REFERENCES accounts (id),
    credit_limit_micros BIGINT NOT NULL DEFAULT 0,
    depth BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX resellers_parent ON resellers (parent_id);

ALTER TABLE accounts ADD COLUMN reseller_id BIGINT REFERENCES resellers (id);
CREATE INDEX accounts_reseller ON accounts (reseller_id);

CREATE TABLE reservation_levels (
    call_id TEXT NOT NULL,
    depth BIGINT NOT NULL,
    reseller_id BIGINT NOT NULL REFERENCES resellers (id),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount_micros BIGINT NOT NULL,
    is_open BIGINT NOT NULL DEFAULT 1,
    charged_micros BIGINT,
    PRIMARY KEY (call_id, depth)
);
CREATE INDEX reservation_levels_open ON reservation_levels (account_id) WHERE is_open = 1;
CREATE INDEX reservation_levels_reseller ON reservation_levels (reseller_id);
