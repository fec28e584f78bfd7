-- E-mail notifications (issue 18). An account's address, its low-balance thresholds
-- (comma-separated micros, e.g. '5000000,1000000') and the language of its mails.
-- A mail is queued in the same transaction as the posting that crossed a threshold, so it is
-- sent once per crossing and survives a restart; a sender claims due rows, sends and marks
-- them. dedupe_key keeps a scheduled check (card expiry, a carrier going down) from queueing
-- one event twice. Identical on both backends but for the key's spelling; keep in step with
-- the other directory's 0011_notifications.sql.
ALTER TABLE accounts ADD COLUMN email TEXT;
ALTER TABLE accounts ADD COLUMN notify_below TEXT;
ALTER TABLE accounts ADD COLUMN email_language TEXT;
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    account_id BIGINT REFERENCES accounts (id),
    recipient TEXT NOT NULL,
    language TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT '',
    amount_micros BIGINT NOT NULL DEFAULT 0,
    threshold_micros BIGINT NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_at_ms BIGINT,
    last_error TEXT
);
CREATE INDEX notifications_due ON notifications (sent_at_ms, next_attempt_ms);
