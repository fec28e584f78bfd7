-- The operator console (issue 15): users with argon2id password hashes (PHC strings) and a
-- role (admin, operator, support), browser sessions (the cookie's SHA-256, never the cookie;
-- each with its CSRF token) and the audit log of every change (who, what, when, before and
-- after as JSON). Identical on both backends but for the key's spelling; keep in step with
-- the other directory's 0012_console.sql.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    user_id BIGINT REFERENCES users (id),
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
-- The console's CDR search walks newest first by (start_ms, id) pages.
CREATE INDEX cdrs_start ON cdrs (start_ms, id);
-- Per-user tokens for the JSON API (the SHA-256 of the token, never the token).
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
