-- A client's key that makes a recharge happen at most once per account (the admin API's
-- Idempotency-Key). Identical on both backends; keep in step with the other directory's
-- 0003_recharge_keys.sql.
ALTER TABLE transactions ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX transactions_idempotency_key
    ON transactions (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
