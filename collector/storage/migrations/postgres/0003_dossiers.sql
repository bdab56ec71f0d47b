-- 0003: information systems, their level dossiers and history, their assets (PostgreSQL).
-- Keep the logical shape identical to sqlite/0003_dossiers.sql.

-- One row per system: the InformationSystem model as JSON, with the queried fields beside it.
CREATE TABLE info_systems (
    system_id      TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    -- NULL until proposed / approved.
    proposed_level INTEGER,
    approved_level INTEGER,
    data           TEXT    NOT NULL
);
CREATE INDEX info_systems_name ON info_systems (name);

-- The level dossier of a system (a system without a row has a new draft dossier).
CREATE TABLE dossiers (
    system_id TEXT NOT NULL PRIMARY KEY REFERENCES info_systems (system_id),
    status    TEXT NOT NULL,
    data      TEXT NOT NULL
);

-- Every change of a dossier. Append-only, and kept when the system is deleted: no foreign key.
CREATE TABLE dossier_events (
    row_id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system_id   TEXT    NOT NULL,
    at_ns       BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX dossier_events_system_id ON dossier_events (system_id, row_id);
CREATE FUNCTION dossier_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'dossier_events is append-only';
END $$;
CREATE TRIGGER dossier_events_append_only BEFORE UPDATE OR DELETE ON dossier_events
    FOR EACH ROW EXECUTE FUNCTION dossier_events_append_only();

-- What belongs to a system. One owner per asset: the key is (kind, value).
CREATE TABLE system_assets (
    kind      TEXT NOT NULL CHECK (kind IN ('agent', 'hostname', 'cidr')),
    value     TEXT NOT NULL,
    system_id TEXT NOT NULL REFERENCES info_systems (system_id),
    PRIMARY KEY (kind, value)
);
CREATE INDEX system_assets_system_id ON system_assets (system_id);
