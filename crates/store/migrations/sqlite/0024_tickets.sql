-- Trouble tickets (issue 22): opened by a customer (account_id), a reseller's user
-- (reseller_id) or staff (for either), in a queue (support, billing, sales), with replies in
-- order; a staff reply marks the ticket answered and queues a mail to the customer in the same
-- transaction. Saved answers are staff's reusable replies. Keep in step with the other
-- directory's 0024_tickets.sql (only the id columns differ).
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    account_id BIGINT REFERENCES accounts (id),
    reseller_id BIGINT REFERENCES resellers (id),
    queue TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX tickets_account ON tickets (account_id);
CREATE INDEX tickets_reseller ON tickets (reseller_id);
CREATE INDEX tickets_queue ON tickets (queue, state);
CREATE TABLE ticket_messages (
    id INTEGER PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    author TEXT NOT NULL,
    from_staff BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id);
CREATE TABLE saved_answers (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
