-- Bonus points (issue 22). Calls earn points on what they cost: points_rules says how many
-- points a whole unit of money spent earns, for a tariff, a reseller's customers or everyone
-- ('tariff:ID', 'reseller:ID', 'default'; the first that matches). Fractions carry over in
-- points_accounts.carry (points x 1,000,000), so a month of small calls earns exactly what its
-- total would. points_lines is the points ledger: each call charge earns at most once
-- (source_key), each redemption is a line and a 'points' credit in the money ledger.
-- points_value says what a point buys in a currency. points_cursor is the last charge looked
-- at. Keep in step with the other directory's 0025_points.sql (only the id columns differ).
CREATE TABLE points_rules (
    scope TEXT PRIMARY KEY,
    points_per_unit BIGINT NOT NULL
);
CREATE TABLE points_value (
    currency TEXT PRIMARY KEY,
    micros_per_point BIGINT NOT NULL
);
CREATE TABLE points_accounts (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    points BIGINT NOT NULL,
    carry BIGINT NOT NULL
);
CREATE TABLE points_lines (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    points BIGINT NOT NULL,
    kind TEXT NOT NULL,
    source_key TEXT NOT NULL UNIQUE,
    balance_after BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX points_lines_account ON points_lines (account_id, id);
CREATE TABLE points_cursor (
    singleton BIGINT PRIMARY KEY,
    last_transaction_id BIGINT NOT NULL
);
