-- 0006: alert triage (status, assignee, history, suppressions) and the audit log (postgres).
-- Keep the logical shape identical in both dialects.

-- Who is handling the alert, and when its triage state last changed (0 = never).
ALTER TABLE alerts ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN updated_ns BIGINT NOT NULL DEFAULT 0;
-- The console's and the API's filters, each paged by row id (AlertQuery).
CREATE INDEX alerts_system_row ON alerts (system_id, row_id);
CREATE INDEX alerts_status_row ON alerts (status, row_id);
CREATE INDEX alerts_rule_host_row ON alerts (rule_id, host, row_id);
CREATE INDEX alerts_host_row ON alerts (host, row_id);

-- Every triage action on an alert, oldest first by row id. Append-only by the code's contract.
CREATE TABLE alert_triage (
    row_id       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     TEXT   NOT NULL,
    at_ns        BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    action       TEXT   NOT NULL,
    status_after TEXT   NOT NULL,
    assignee     TEXT   NOT NULL DEFAULT '',
    comment      TEXT   NOT NULL DEFAULT '',
    until_ns     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alert_triage_alert_id ON alert_triage (alert_id, row_id);

-- New alerts of rule_id on host (and system_id) before until_ns are stored as "suppressed".
CREATE TABLE suppressions (
    suppression_id  TEXT   NOT NULL PRIMARY KEY,
    rule_id         TEXT   NOT NULL,
    host            TEXT   NOT NULL,
    system_id       TEXT   NOT NULL DEFAULT '',
    created_ns      BIGINT NOT NULL,
    until_ns        BIGINT NOT NULL,
    actor           TEXT   NOT NULL,
    reason          TEXT   NOT NULL DEFAULT '',
    source_alert_id TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX suppressions_rule_host ON suppressions (rule_id, host, until_ns);
CREATE INDEX suppressions_until ON suppressions (until_ns);

-- The hash chain (collector/audit/model.py). seq is assigned by the appender inside its write
-- transaction (never a sequence: a rolled-back append must not leave a gap). detail is
-- canonical JSON and never holds a secret.
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at_ns     BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    target    TEXT   NOT NULL DEFAULT '',
    detail    TEXT   NOT NULL DEFAULT '{}',
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_at ON audit_log (at_ns);
-- Changing the log takes a deliberate DROP TRIGGER first; audit verify still catches it.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
