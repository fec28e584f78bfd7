-- Draining a node (issue 19): `talktime nodes drain NODE` (or the API) sets drain_requested_ms;
-- the node sees it with its next heartbeat, refuses new calls (503, and 503 to OPTIONS so a
-- proxy's probe takes it out), lets its calls end and exits. A node clears it when it starts.
-- Identical on both backends; keep in step with the other directory's 0018_node_drain.sql.
ALTER TABLE nodes ADD COLUMN drain_requested_ms BIGINT;
-- Set when a node stopped by itself (drained or signalled, every call billed): not dead.
ALTER TABLE nodes ADD COLUMN stopped_at_ms BIGINT;
