-- Promotion coupons (issue 22): a code given with a voucher recharge adds a share of it
-- (percent_bp basis points: 1000 = 10 %) or a fixed amount (amount_micros) as a
-- 'promotion' ledger line, between two times, at most max_uses times in all and
-- max_uses_per_account times by one account (0: no limit). coupon_uses keeps each use.
-- Keep in step with the other directory's 0020_coupons.sql (only the id columns differ).
CREATE TABLE coupons (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    percent_bp BIGINT NOT NULL DEFAULT 0,
    amount_micros BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL,
    valid_from_ms BIGINT,
    valid_until_ms BIGINT,
    max_uses BIGINT NOT NULL DEFAULT 0,
    max_uses_per_account BIGINT NOT NULL DEFAULT 1,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE coupon_uses (
    id INTEGER PRIMARY KEY,
    coupon_id BIGINT NOT NULL REFERENCES coupons (id),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    recharge_micros BIGINT NOT NULL,
    bonus_micros BIGINT NOT NULL,
    used_at_ms BIGINT NOT NULL
);
CREATE INDEX coupon_uses_coupon ON coupon_uses (coupon_id, account_id);
