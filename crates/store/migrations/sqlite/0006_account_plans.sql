-- A card's activation fee (seed 000): charged with its first answered call, in that call's
-- settle, exactly once; the same settle records the card's first use (which starts an
-- "expires N days after first use" rule). Identical on both backends; keep in step with the
-- other directory's 0006_account_plans.sql.
ALTER TABLE cards ADD COLUMN activation_fee_micros BIGINT NOT NULL DEFAULT 0;
