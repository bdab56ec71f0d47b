-- 0008: sessions ended before their expiry (logout). Keep the logical shape identical in both
-- dialects. Sessions are signed cookies, not stored; a logout records the SHA-256 of the
-- session's random token here until the cookie would have expired anyway, so a copy of the
-- cookie is refused from then on.
CREATE TABLE ended_sessions (
    session_hash TEXT   NOT NULL PRIMARY KEY,
    expires_ns   BIGINT NOT NULL
);
CREATE INDEX ended_sessions_expires_ns ON ended_sessions (expires_ns);
