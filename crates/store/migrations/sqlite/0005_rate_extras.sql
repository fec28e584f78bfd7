-- Every per-destination field of a rate beyond the basic seven (minimum cost, disconnect fee
-- and factor, minute shrinking, validity dates, steps, time-of-day periods), as the JSON the
-- billing crate's RateExtras reads; '{}' when none. Identical on both backends; keep in step
-- with the other directory's 0005_rate_extras.sql.
ALTER TABLE rates ADD COLUMN extras_json TEXT NOT NULL DEFAULT '{}';
