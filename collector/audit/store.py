"""AuditStore in SQL written once for both backends, and `append_in` for other mixins.

An append reads the last record and writes the next one inside one write transaction that
holds the writer lock, so two appenders (the collector and a CLI in another process) cannot
both take the same seq or fork the chain. SQLite's write transaction (BEGIN IMMEDIATE) is
already the only writer; PostgreSQL's READ COMMITTED would let two transactions read the same
last record, so the table is locked IN EXCLUSIVE MODE first (plain reads still go through).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from collector.audit.model import GENESIS, AuditEntry, AuditRecord, record_hash
from collector.storage.enrollment_sql import Sql
from collector.storage.rows import MAX_BIGINT, check_limit

_COLUMNS = "SELECT seq, at_ns, actor, action, target, detail, prev_hash, hash FROM audit_log"
_INSERT = (
    "INSERT INTO audit_log (seq, at_ns, actor, action, target, detail, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def clamp(value: int) -> int:
    """A bound for a BIGINT column: values beyond it compare the same, and SQLite refuses
    integers wider than 64 bits outright (a date in the year 2999 is one)."""
    return max(min(value, MAX_BIGINT), -MAX_BIGINT - 1)


def detail_json(detail: Mapping[str, object]) -> str:
    """The canonical JSON kept in the `detail` column (the same form the hash covers).

    ValueError when the detail is not plain JSON data (a set, bytes, NaN...): a record must
    read back exactly as it was hashed.
    """
    try:
        return json.dumps(
            dict(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit detail is not plain JSON data: {exc}") from None


def _normalized(entry: AuditEntry) -> tuple[AuditEntry, str]:
    """The entry as it will read back from the database (tuples become lists ...), and its JSON."""
    text = detail_json(entry.detail)
    return AuditEntry(entry.actor, entry.action, entry.target, json.loads(text)), text


def audit_record(row: Sequence[Any]) -> AuditRecord:
    seq, at_ns, actor, action, target, detail, prev_hash, digest = row
    try:
        parsed = json.loads(detail)
    except ValueError:
        # A damaged row still reads, so verify can name it instead of the reader failing.
        parsed = {"unreadable_detail": str(detail)}
    if not isinstance(parsed, dict):
        parsed = {"unreadable_detail": str(detail)}
    return AuditRecord(int(seq), int(at_ns), actor, action, target, parsed, prev_hash, digest)


def append_in(sql: Sql, entry: AuditEntry, at_ns: int) -> AuditRecord:
    """Append `entry` inside the caller's open write transaction (`_sql_write`).

    The record commits or rolls back with the caller's other writes, so a triage action and
    its audit record exist together or not at all.
    """
    if not -MAX_BIGINT - 1 <= at_ns <= MAX_BIGINT:
        raise ValueError(f"at_ns {at_ns} does not fit in 64 bits")
    normal, text = _normalized(entry)
    if sql.dialect == "postgres":
        sql("LOCK TABLE audit_log IN EXCLUSIVE MODE")
    last = sql.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev_hash = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    digest = record_hash(seq, at_ns, normal, prev_hash)
    sql(_INSERT, (seq, at_ns, normal.actor, normal.action, normal.target, text, prev_hash, digest))
    return AuditRecord(
        seq, at_ns, normal.actor, normal.action, normal.target, normal.detail, prev_hash, digest
    )


class AuditStoreMixin:
    """AuditStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def append_audit(self, entry: AuditEntry, *, at_ns: int) -> AuditRecord:
        with self._sql_write("append_audit") as sql:
            return append_in(sql, entry, at_ns)

    def audit_records(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action_prefix: str | None = None,
        target: str | None = None,
        from_ns: int | None = None,
        before_ns: int | None = None,
    ) -> list[AuditRecord]:
        check_limit(limit)
        where = ["seq > ?"]
        params: list[object] = [clamp(after_seq)]
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if action_prefix:
            # substr, not LIKE: a prefix holding `_` or `%` must match literally.
            where.append("substr(action, 1, ?) = ?")
            params += [len(action_prefix), action_prefix]
        if target is not None:
            where.append("target = ?")
            params.append(target)
        if from_ns is not None:
            where.append("at_ns >= ?")
            params.append(clamp(from_ns))
        if before_ns is not None:
            where.append("at_ns < ?")
            params.append(clamp(before_ns))
        # Only fixed condition texts are joined; every value is a bound parameter.
        query = f"{_COLUMNS} WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        with self._sql_read("audit_records") as sql:
            rows = sql.all(query, [*params, limit])
        return [audit_record(row) for row in rows]

    def last_audit_record(self) -> AuditRecord | None:
        with self._sql_read("last_audit_record") as sql:
            row = sql.one(f"{_COLUMNS} ORDER BY seq DESC LIMIT 1")
        return None if row is None else audit_record(row)
