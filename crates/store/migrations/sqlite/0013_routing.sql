-- Carriers and dial plans edited live (issue 15): each is one JSON document (the TOML's
-- [[carriers]] or [[dial_plans]] entry) keyed by kind and name, in the order listed. The
-- TOML seeds these rows at the first start; afterwards the database is what every node
-- routes with. ledger_meta's 'routing_version' grows with every change, so nodes notice one
-- with a single-row read. Identical on both backends; keep in step with the other
-- directory's 0013_routing.sql.
CREATE TABLE routing_documents (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    position BIGINT NOT NULL,
    document TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
