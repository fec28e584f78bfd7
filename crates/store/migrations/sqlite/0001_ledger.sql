-- Talktime ledger schema, SQLite dialect. Keep in step with ../postgres/0001_ledger.sql:
-- the test `schema_is_the_same_on_both_backends` compares tables and columns.
-- Only INTEGER/BIGINT and TEXT columns: money in micros, times in epoch ms, flags as 0/1.

CREATE TABLE tariffs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL,
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE rates (
    id INTEGER PRIMARY KEY,
    tariff_id BIGINT NOT NULL REFERENCES tariffs (id) ON DELETE CASCADE,
    prefix TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    sell_rate_micros BIGINT NOT NULL,
    buy_rate_micros BIGINT NOT NULL,
    initial_block_s BIGINT NOT NULL,
    increment_s BIGINT NOT NULL,
    connection_fee_micros BIGINT NOT NULL,
    UNIQUE (tariff_id, prefix)
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance_micros BIGINT NOT NULL DEFAULT 0,
    caller_id_min_balance_micros BIGINT NOT NULL DEFAULT 0,
    concurrency_limit BIGINT NOT NULL DEFAULT 1,
    owner_account_id BIGINT REFERENCES accounts (id),
    tariff_id BIGINT REFERENCES tariffs (id),
    status TEXT NOT NULL DEFAULT 'active',
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE card_batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    tariff_id BIGINT REFERENCES tariffs (id),
    owner_account_id BIGINT REFERENCES accounts (id),
    currency TEXT NOT NULL,
    card_count BIGINT NOT NULL,
    pin_length BIGINT NOT NULL,
    value_micros BIGINT NOT NULL,
    kind TEXT NOT NULL,
    expires_at_ms BIGINT,
    valid_after_first_use_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE cards (
    id INTEGER PRIMARY KEY,
    pin TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL UNIQUE REFERENCES accounts (id),
    batch_id BIGINT REFERENCES card_batches (id),
    tariff_id BIGINT REFERENCES tariffs (id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at_ms BIGINT,
    valid_after_first_use_ms BIGINT,
    first_used_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX cards_batch ON cards (batch_id);

CREATE TABLE caller_ids (
    number TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE pin_failures (
    caller_id TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_started_ms BIGINT NOT NULL,
    locked_until_ms BIGINT
);

CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    balance_after_micros BIGINT NOT NULL,
    call_id TEXT,
    reference TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX transactions_account ON transactions (account_id, id);
-- Defence in depth behind settle's state check: one call charge per call and account.
CREATE UNIQUE INDEX transactions_one_charge_per_call
    ON transactions (account_id, call_id) WHERE kind = 'call_charge';

CREATE TABLE reservations (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    owner_account_id BIGINT REFERENCES accounts (id),
    card_id BIGINT REFERENCES cards (id),
    amount_micros BIGINT NOT NULL,
    max_duration_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    charged_micros BIGINT,
    created_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT
);
CREATE INDEX reservations_open_account ON reservations (account_id) WHERE state = 'open';
CREATE INDEX reservations_open_owner ON reservations (owner_account_id) WHERE state = 'open';

CREATE TABLE cdrs (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    account_id BIGINT REFERENCES accounts (id),
    card_id BIGINT REFERENCES cards (id),
    caller_id TEXT,
    access_number TEXT,
    destination TEXT NOT NULL,
    carrier TEXT,
    start_ms BIGINT NOT NULL,
    answer_ms BIGINT,
    end_ms BIGINT NOT NULL,
    billed_seconds BIGINT NOT NULL,
    fees_json TEXT NOT NULL DEFAULT '[]',
    taxes_json TEXT NOT NULL DEFAULT '[]',
    tax_micros BIGINT NOT NULL DEFAULT 0,
    total_micros BIGINT NOT NULL,
    buy_cost_micros BIGINT NOT NULL,
    sip_code BIGINT,
    q850_cause BIGINT,
    hangup_by TEXT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (call_id, attempt)
);
CREATE INDEX cdrs_account ON cdrs (account_id, start_ms);
