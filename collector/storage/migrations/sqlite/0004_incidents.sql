-- 0004: incidents, the alerts attached to them, the log of reports issued (SQLite).
-- Keep the logical shape identical to postgres/0004_incidents.sql.

-- One row per incident: the Incident model as JSON, with the queried fields beside it. The id is
-- the alerts' incident_id. No foreign key to info_systems: an incident outlives a deleted system
-- and may have none (an alert from a host not yet registered).
CREATE TABLE incidents (
    incident_id TEXT   NOT NULL PRIMARY KEY,
    system_id   TEXT   NOT NULL DEFAULT '',
    category    TEXT   NOT NULL DEFAULT '',
    severity    TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    detected_ns BIGINT NOT NULL,
    data        TEXT   NOT NULL
);
CREATE INDEX incidents_detected ON incidents (detected_ns);
CREATE INDEX incidents_system_id ON incidents (system_id, detected_ns);

-- The alerts of an incident; an alert belongs to one incident only.
CREATE TABLE incident_alerts (
    alert_id    TEXT   NOT NULL PRIMARY KEY,
    incident_id TEXT   NOT NULL REFERENCES incidents (incident_id),
    attached_ns BIGINT NOT NULL
);
CREATE INDEX incident_alerts_incident_id ON incident_alerts (incident_id, attached_ns);

-- Every report document issued for an incident, with the digest of what was issued.
-- Append-only.
CREATE TABLE incident_report_log (
    row_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT    NOT NULL,
    at_ns       BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    lang        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    problems    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incident_report_log_incident_id ON incident_report_log (incident_id, row_id);
CREATE TRIGGER incident_report_log_no_update BEFORE UPDATE ON incident_report_log
BEGIN SELECT RAISE(ABORT, 'incident_report_log is append-only'); END;
CREATE TRIGGER incident_report_log_no_delete BEFORE DELETE ON incident_report_log
BEGIN SELECT RAISE(ABORT, 'incident_report_log is append-only'); END;
