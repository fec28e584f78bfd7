-- Shared balances (seed 004: many phones, SIP subscribers and caller IDs on one account) with
-- a low-balance rule: once the account's free credit (balance minus what its calls hold) is
-- below low_balance_micros, it carries at most low_balance_calls calls at once and, when
-- low_balance_call_cap_micros is set, each new call may hold at most that much. NULL: no rule.
-- Identical on both backends; keep in step with the other directory's 0017_low_balance.sql.
ALTER TABLE accounts ADD COLUMN low_balance_micros BIGINT;
ALTER TABLE accounts ADD COLUMN low_balance_calls BIGINT NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN low_balance_call_cap_micros BIGINT;
