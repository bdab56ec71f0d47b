-- 0002: enrollment tokens, agents' client certificates, enrollment status of agents (SQLite).
-- Keep the logical shape identical to postgres/0002_enrollment.sql.

-- Single-use tokens. Only a SHA-256 of the secret is kept, the secret is shown once.
CREATE TABLE enrollment_tokens (
    token_id    TEXT   NOT NULL PRIMARY KEY,
    secret_hash TEXT   NOT NULL,
    created_ns  BIGINT NOT NULL,
    expires_ns  BIGINT NOT NULL,
    -- Information system the enrolled agent belongs to ('' for none).
    system_id   TEXT   NOT NULL DEFAULT '',
    -- Agent id the token is bound to ('' when derived from the agent's host name).
    agent_id    TEXT   NOT NULL DEFAULT '',
    used_ns     BIGINT NOT NULL DEFAULT 0,
    used_by     TEXT   NOT NULL DEFAULT '',
    revoked_ns  BIGINT NOT NULL DEFAULT 0
);

-- Every client certificate the collector signed: a stream is accepted only with an unrevoked
-- one of them.
CREATE TABLE agent_certificates (
    -- Lowercase hex: X.509 serials are up to 159 bits, beyond BIGINT.
    serial        TEXT   NOT NULL PRIMARY KEY,
    agent_id      TEXT   NOT NULL,
    not_before_ns BIGINT NOT NULL,
    not_after_ns  BIGINT NOT NULL,
    issued_ns     BIGINT NOT NULL,
    revoked_ns    BIGINT NOT NULL DEFAULT 0,
    revoke_reason TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX agent_certificates_agent_id ON agent_certificates (agent_id);

-- '' (never enrolled, e.g. insecure_dev), 'enrolled' or 'revoked'.
ALTER TABLE agents ADD COLUMN enrollment_status TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN system_id TEXT NOT NULL DEFAULT '';
-- The newest certificate issued to the agent.
ALTER TABLE agents ADD COLUMN cert_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN cert_not_after_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN enrolled_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN revoked_ns BIGINT NOT NULL DEFAULT 0;
