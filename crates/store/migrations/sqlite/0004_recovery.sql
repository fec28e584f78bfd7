-- Crash recovery and multi-node leases (issue 12). Identical on both backends; keep in step
-- with the other directory's 0004_recovery.sql.

-- The switch that holds the reservation ('' for reservations made before node identities).
ALTER TABLE reservations ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
-- Set when the carrier answered: what a restart needs to bill the call and end both legs
-- (JSON written by the switch: rating inputs, the CDR's fields, a BYE per leg).
ALTER TABLE reservations ADD COLUMN answered_at_ms BIGINT;
ALTER TABLE reservations ADD COLUMN checkpoint TEXT;
CREATE INDEX reservations_open_node ON reservations (node_id) WHERE state = 'open';

-- One row per switch, its heartbeat refreshed every second: a node whose heartbeat is older
-- than the lease is dead, and its open calls are billed to that heartbeat by whoever sees it.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    started_at_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
