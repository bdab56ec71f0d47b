"""EnrollmentStore in SQL, written once for both backends.

The statements are portable SQL with `?` placeholders; `Sql` turns them into the driver's
style. A backend mixes `EnrollmentStoreMixin` in and provides two context managers: a
read-only session and a write transaction that holds the database's writer lock (SQLite:
BEGIN IMMEDIATE; PostgreSQL: a transaction whose token row is locked FOR UPDATE).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from collector.storage.enrollment import (
    ENROLLED,
    REVOKED,
    TOKEN_REFUSALS,
    AgentCertificate,
    ChildCertificate,
    ChildCertificateState,
    Enrollment,
    EnrollmentToken,
    EnrollOutcome,
)
from collector.storage.migrations import Dialect

# Token and certificate rows are read and written in their dataclasses' field order.
_INSERT_TOKENS = (
    "INSERT INTO enrollment_tokens (token_id, secret_hash, created_ns, expires_ns, system_id, "
    "agent_id, used_ns, used_by, revoked_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_TOKENS = (
    "SELECT token_id, secret_hash, created_ns, expires_ns, system_id, agent_id, used_ns, "
    "used_by, revoked_ns FROM enrollment_tokens"
)
_SELECT_TOKEN = _SELECT_TOKENS + " WHERE token_id = ?"
_INSERT_CERT = (
    "INSERT INTO agent_certificates (serial, agent_id, not_before_ns, not_after_ns, issued_ns, "
    "revoked_ns, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_CERT = (
    "SELECT serial, agent_id, not_before_ns, not_after_ns, issued_ns, revoked_ns, revoke_reason "
    "FROM agent_certificates WHERE serial = ?"
)
# The certificate must belong to an enrolled agent. `{lock}` is FOR UPDATE on PostgreSQL.
_SELECT_RENEWABLE = (
    "SELECT c.revoked_ns, a.enrollment_status FROM agent_certificates c "
    "JOIN agents a ON a.agent_id = c.agent_id WHERE c.serial = ? AND c.agent_id = ?{lock}"
)
_SELECT_REVOKED_SERIALS = (
    "SELECT serial FROM agent_certificates WHERE revoked_ns <> 0 AND serial IN ({marks})"
)
_INSERT_AGENT = """
INSERT INTO agents (agent_id, hostname, version, enrollment_status, system_id, cert_serial,
                    cert_not_after_ns, enrolled_ns, revoked_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (agent_id) DO NOTHING
"""
# Re-enrolling a named agent: a token without a system keeps the agent's binding.
_REENROLL_AGENT = """
INSERT INTO agents (agent_id, hostname, version, enrollment_status, system_id, cert_serial,
                    cert_not_after_ns, enrolled_ns, revoked_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (agent_id) DO UPDATE SET
    hostname = excluded.hostname,
    version = excluded.version,
    enrollment_status = excluded.enrollment_status,
    system_id = CASE WHEN excluded.system_id <> '' THEN excluded.system_id
                     ELSE agents.system_id END,
    cert_serial = excluded.cert_serial,
    cert_not_after_ns = excluded.cert_not_after_ns,
    enrolled_ns = excluded.enrolled_ns,
    revoked_ns = 0
"""
_REVOKE_CERTS = (
    "UPDATE agent_certificates SET revoked_ns = ?, revoke_reason = ? "
    "WHERE agent_id = ? AND revoked_ns = 0"
)
_INSERT_CHILD_CERT = (
    "INSERT INTO child_certificates (serial, name, not_before_ns, not_after_ns, issued_ns, "
    "revoked_ns, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_CHILD_CERTS = (
    "SELECT serial, name, not_before_ns, not_after_ns, issued_ns, revoked_ns, revoke_reason "
    "FROM child_certificates ORDER BY issued_ns, serial"
)
_REVOKE_CHILD_CERTS = (
    "UPDATE child_certificates SET revoked_ns = ?, revoke_reason = ? "
    "WHERE name = ? AND revoked_ns = 0"
)
# Keeps `IN (...)` lists under SQLite's old 999-parameter limit.
_SERIALS_PER_QUERY = 500


class Sql:
    """Runs portable `?`-style statements on one connection of either dialect."""

    def __init__(self, execute: Callable[[str, Sequence[Any]], Any], dialect: Dialect) -> None:
        self._execute = execute
        self.dialect = dialect

    def __call__(self, text: str, params: Sequence[Any] = ()) -> Any:
        if self.dialect == "postgres":
            # No statement here has a literal `?` or `%`, so this is a plain placeholder swap.
            text = text.replace("?", "%s")
        return self._execute(text, params)

    def one(self, text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self(text, params).fetchone()
        return None if row is None else tuple(row)

    def all(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self(text, params).fetchall()]

    def changed(self, text: str, params: Sequence[Any] = ()) -> int:
        return int(self(text, params).rowcount)

    @property
    def lock_row(self) -> str:
        # SQLite's BEGIN IMMEDIATE already holds the only writer lock; it has no FOR UPDATE.
        return " FOR UPDATE" if self.dialect == "postgres" else ""


def _token(row: Sequence[Any]) -> EnrollmentToken:
    return EnrollmentToken(*row)


def _certificate(row: Sequence[Any]) -> AgentCertificate:
    return AgentCertificate(*row)


class EnrollmentStoreMixin:
    """EnrollmentStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        """A session for reads; driver errors leave it as StorageError."""
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        """A transaction holding the writer lock: committed on exit, rolled back on error."""
        raise NotImplementedError

    def create_token(self, token: EnrollmentToken) -> None:
        with self._sql_write("create_token") as sql:
            sql(
                _INSERT_TOKENS,
                (
                    token.token_id,
                    token.secret_hash,
                    token.created_ns,
                    token.expires_ns,
                    token.system_id,
                    token.agent_id,
                    token.used_ns,
                    token.used_by,
                    token.revoked_ns,
                ),
            )

    def get_token(self, token_id: str) -> EnrollmentToken | None:
        with self._sql_read("get_token") as sql:
            row = sql.one(_SELECT_TOKEN, (token_id,))
        return None if row is None else _token(row)

    def list_tokens(self) -> list[EnrollmentToken]:
        with self._sql_read("list_tokens") as sql:
            rows = sql.all(_SELECT_TOKENS + " ORDER BY created_ns, token_id")
        return [_token(row) for row in rows]

    def revoke_token(self, token_id: str, now_ns: int) -> bool:
        with self._sql_write("revoke_token") as sql:
            return (
                sql.changed(
                    "UPDATE enrollment_tokens SET revoked_ns = ? "
                    "WHERE token_id = ? AND used_ns = 0 AND revoked_ns = 0",
                    (now_ns, token_id),
                )
                == 1
            )

    def enroll_agent(self, enrollment: Enrollment) -> EnrollOutcome:
        e, cert = enrollment, enrollment.certificate
        with self._sql_write("enroll_agent") as sql:
            row = sql.one(_SELECT_TOKEN + sql.lock_row, (e.token_id,))
            if row is None:
                return "unknown_token"
            state = _token(row).state(e.now_ns)
            if state != "unused":
                return TOKEN_REFUSALS[state]
            agent = (
                e.agent_id,
                e.hostname,
                e.version,
                ENROLLED,
                e.system_id,
                cert.serial,
                cert.not_after_ns,
                e.now_ns,
            )
            if e.exclusive:
                # Nothing has been written yet, so returning here leaves the token unused.
                if sql.changed(_INSERT_AGENT, agent) == 0:
                    return "agent_id_taken"
            else:
                sql(_REVOKE_CERTS, (e.now_ns, "superseded by re-enrollment", e.agent_id))
                sql(_REENROLL_AGENT, agent)
            sql(_INSERT_CERT, _certificate_row(cert))
            sql(
                "UPDATE enrollment_tokens SET used_ns = ?, used_by = ? WHERE token_id = ?",
                (e.now_ns, e.agent_id, e.token_id),
            )
        return "enrolled"

    def renew_certificate(self, agent_id: str, old_serial: str, new: AgentCertificate) -> bool:
        with self._sql_write("renew_certificate") as sql:
            row = sql.one(_SELECT_RENEWABLE.format(lock=sql.lock_row), (old_serial, agent_id))
            if row is None or row[0] != 0 or row[1] != ENROLLED:
                return False
            sql(_INSERT_CERT, _certificate_row(new))
            sql(
                "UPDATE agents SET cert_serial = ?, cert_not_after_ns = ? WHERE agent_id = ?",
                (new.serial, new.not_after_ns, agent_id),
            )
        return True

    def get_certificate(self, serial: str) -> AgentCertificate | None:
        with self._sql_read("get_certificate") as sql:
            row = sql.one(_SELECT_CERT, (serial,))
        return None if row is None else _certificate(row)

    def revoked_serials(self, serials: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(serials))
        found: set[str] = set()
        with self._sql_read("revoked_serials") as sql:
            for start in range(0, len(wanted), _SERIALS_PER_QUERY):
                chunk = wanted[start : start + _SERIALS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                # Only "?" placeholders are interpolated; the serials are bound parameters.
                rows = sql.all(_SELECT_REVOKED_SERIALS.format(marks=marks), chunk)
                found.update(str(r[0]) for r in rows)
        return found

    def revoke_agent(self, agent_id: str, now_ns: int) -> int | None:
        with self._sql_write("revoke_agent") as sql:
            marked = sql.changed(
                "UPDATE agents SET enrollment_status = ?, "
                "revoked_ns = CASE WHEN revoked_ns = 0 THEN ? ELSE revoked_ns END "
                "WHERE agent_id = ?",
                (REVOKED, now_ns, agent_id),
            )
            if marked == 0:
                return None
            return sql.changed(_REVOKE_CERTS, (now_ns, "agent revoked", agent_id))

    def record_child_certificate(self, cert: ChildCertificate) -> None:
        with self._sql_write("record_child_certificate") as sql:
            sql(
                _INSERT_CHILD_CERT,
                (
                    cert.serial,
                    cert.name,
                    cert.not_before_ns,
                    cert.not_after_ns,
                    cert.issued_ns,
                    cert.revoked_ns,
                    cert.revoke_reason,
                ),
            )

    def list_child_certificates(self) -> list[ChildCertificate]:
        with self._sql_read("list_child_certificates") as sql:
            rows = sql.all(_SELECT_CHILD_CERTS)
        return [ChildCertificate(*row) for row in rows]

    def revoke_child(self, name: str, now_ns: int, reason: str = "") -> int:
        with self._sql_write("revoke_child") as sql:
            return sql.changed(_REVOKE_CHILD_CERTS, (now_ns, reason, name))

    def child_certificate_state(self, name: str, serial: str) -> ChildCertificateState:
        with self._sql_read("child_certificate_state") as sql:
            row = sql.one(
                "SELECT revoked_ns FROM child_certificates WHERE serial = ? AND name = ?",
                (serial, name),
            )
        if row is None:
            return "unknown"
        return "revoked" if row[0] else "valid"


def _certificate_row(cert: AgentCertificate) -> tuple[Any, ...]:
    return (
        cert.serial,
        cert.agent_id,
        cert.not_before_ns,
        cert.not_after_ns,
        cert.issued_ns,
        cert.revoked_ns,
        cert.revoke_reason,
    )
