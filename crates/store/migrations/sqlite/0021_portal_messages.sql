-- The portal's message board (issue 22): an operator's message to every customer
-- (reseller_id NULL) or to one reseller's direct customers, shown in the customer portal
-- until expires_at_ms (NULL: until removed). Keep in step with the other directory's
-- 0021_portal_messages.sql (only the id column differs).
CREATE TABLE portal_messages (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    reseller_id BIGINT REFERENCES resellers (id),
    posted_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
);
