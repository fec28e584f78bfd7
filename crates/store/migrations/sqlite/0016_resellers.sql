-- Resellers (issue 16): the vendor (the operator) sells to resellers, a reseller to
-- sub-resellers and customers. Each reseller keeps its money on an account of its own
-- (balance, status, concurrency limit, and the tariff it buys at: what the level above charges
-- it); credit_limit_micros lets its balance go that far below zero; sell_tariff_id is what its
-- customers pay when they have no tariff of their own (white label), and min_margin_percent how
-- much above its own price a destination must sell (else its customers' calls there are
-- refused); agent_pin_hash is the keyed hash of the PIN its retail agents key on a retail
-- recharge line (like cards' PINs, never the PIN). Commissions, paid by the vendor as
-- 'commission' lines on the reseller's account: commission_calls_bp basis points of what the
-- level below paid for each call (plus commission_call_flat_micros per charged call), and
-- commission_payments_bp of its own customers' payments; calls_per_second bounds the new calls
-- of all its customers together (0: no bound). A customer account names its reseller. Every call of a reseller's customer also holds credit on each reseller above it
-- (reservation_levels, depth 1 = the customer's own reseller), settled with the call in its
-- transaction at that level's price. Identical on both backends but for the key's spelling;
-- keep in step with the other directory's 0016_resellers.sql.
CREATE TABLE resellers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    parent_id BIGINT REFERENCES resellers (id),
    account_id BIGINT NOT NULL UNIQUE REFERENCES accounts (id),
    credit_limit_micros BIGINT NOT NULL DEFAULT 0,
    sell_tariff_id BIGINT REFERENCES tariffs (id),
    min_margin_percent BIGINT NOT NULL DEFAULT 0,
    agent_pin_hash TEXT UNIQUE,
    commission_calls_bp BIGINT NOT NULL DEFAULT 0,
    commission_call_flat_micros BIGINT NOT NULL DEFAULT 0,
    commission_payments_bp BIGINT NOT NULL DEFAULT 0,
    calls_per_second BIGINT NOT NULL DEFAULT 0,
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
    commission_micros BIGINT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, depth)
);
CREATE INDEX reservation_levels_recent ON reservation_levels (account_id, created_at_ms);
CREATE INDEX reservation_levels_open ON reservation_levels (account_id) WHERE is_open = 1;
CREATE INDEX reservation_levels_reseller ON reservation_levels (reseller_id);

-- A console or API user of role 'reseller' sees its reseller's tree only.
ALTER TABLE users ADD COLUMN reseller_id BIGINT REFERENCES resellers (id);
