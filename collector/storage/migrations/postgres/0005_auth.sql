-- 0005: console users and API tokens (postgres). Keep the logical shape identical in both dialects.

-- systems: a JSON array of the information system ids a soc user is contracted for.
-- valid_until_ns: 0 = no end (an assessor's access ends then); disabled_ns: 0 = active.
-- password_hash: argon2id, never the password.
CREATE TABLE users (
    username       TEXT   NOT NULL PRIMARY KEY,
    role           TEXT   NOT NULL,
    display_name   TEXT   NOT NULL DEFAULT '',
    created_ns     BIGINT NOT NULL,
    systems        TEXT   NOT NULL DEFAULT '[]',
    valid_until_ns BIGINT NOT NULL DEFAULT 0,
    disabled_ns    BIGINT NOT NULL DEFAULT 0,
    password_hash  TEXT   NOT NULL
);

-- Bearer tokens. Only a SHA-256 of the secret is kept, the secret is shown once.
CREATE TABLE api_tokens (
    token_id    TEXT   NOT NULL PRIMARY KEY,
    secret_hash TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    created_ns  BIGINT NOT NULL,
    expires_ns  BIGINT NOT NULL,
    systems     TEXT   NOT NULL DEFAULT '[]',
    label       TEXT   NOT NULL DEFAULT '',
    revoked_ns  BIGINT NOT NULL DEFAULT 0
);
