-- 0009: certificates this (parent) collector issued to child collectors (SQLite).
-- Keep the logical shape identical to postgres/0009_collector_children.sql.

-- Every child collector certificate issued through `children issue`: UpstreamService accepts a
-- batch only from an unrevoked one of them (an allow-list, like agent_certificates).
CREATE TABLE child_certificates (
    -- Lowercase hex: X.509 serials are up to 159 bits, beyond BIGINT.
    serial        TEXT   NOT NULL PRIMARY KEY,
    -- The child collector's name: the certificate's CN and urn:canhgac:collector:<name>.
    name          TEXT   NOT NULL,
    not_before_ns BIGINT NOT NULL,
    not_after_ns  BIGINT NOT NULL,
    issued_ns     BIGINT NOT NULL,
    revoked_ns    BIGINT NOT NULL DEFAULT 0,
    revoke_reason TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX child_certificates_name ON child_certificates (name);
