-- Bonus points buy free minutes (issue 22): in a currency, points_per_minute points buy one
-- minute of calls to destinations starting with one of the comma-separated prefixes. A
-- redemption adds the seconds to the account's one-time free-minute package in account_plans
-- (package_every_ms 0: seconds left, then these), used before money like a plan's package;
-- its line is in points_lines (kind 'minutes'). Identical on both backends; keep in step with
-- the other directory's 0028_points_minutes.sql.
CREATE TABLE points_minutes (
    currency TEXT PRIMARY KEY,
    points_per_minute BIGINT NOT NULL,
    prefixes TEXT NOT NULL
);
