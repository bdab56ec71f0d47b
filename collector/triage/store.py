"""TriageStore in SQL written once for both backends.

`TriageStoreMixin` implements collector/triage/model.py's TriageStore for a backend that
provides `_sql_read` and `_sql_write`. A triage action changes the alert row, appends its
history row, for "suppress" creates a Suppression, and appends an audit record, all in one
write transaction: an action is either wholly recorded or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

from collector.audit.model import AuditEntry
from collector.audit.store import append_in, clamp
from collector.storage.base import StoredAlert
from collector.storage.enrollment_sql import Sql
from collector.storage.reads import ALERT_COLUMNS
from collector.storage.rows import check_limit, stored_alert
from collector.triage.model import (
    ALERT_STATUSES,
    MAX_ALERT_QUERY_LIMIT,
    MAX_COMMENT_CHARS,
    MAX_SUPPRESSION_NS,
    STATUS_AFTER,
    TRIAGE_ACTIONS,
    AlertQuery,
    Suppression,
    TriageAction,
    TriageEntry,
    TriageError,
)

_INSERT_HISTORY = (
    "INSERT INTO alert_triage (alert_id, at_ns, actor, action, status_after, assignee, comment, "
    "until_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_HISTORY = (
    "SELECT alert_id, at_ns, actor, action, status_after, assignee, comment, until_ns "
    "FROM alert_triage WHERE alert_id = ? ORDER BY row_id"
)
_INSERT_SUPPRESSION = (
    "INSERT INTO suppressions (suppression_id, rule_id, host, system_id, created_ns, until_ns, "
    "actor, reason, source_alert_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_SUPPRESSIONS = (
    "SELECT suppression_id, rule_id, host, system_id, created_ns, until_ns, actor, reason, "
    "source_alert_id FROM suppressions WHERE until_ns > ? ORDER BY created_ns, suppression_id"
)
# `{lock}` is FOR UPDATE on PostgreSQL, so two actions on one alert apply one after the other.
_SELECT_FOR_TRIAGE = (
    "SELECT status, assignee, rule_id, host, system_id FROM alerts WHERE alert_id = ?{lock}"
)
_SAME_INCIDENT = (
    " WHERE alert_id IN (SELECT alert_id FROM incident_alerts WHERE incident_id = ?) "
    "AND alert_id <> ? ORDER BY row_id DESC LIMIT ?"
)
_SAME_RULE_HOST = " WHERE rule_id = ? AND host = ? AND alert_id <> ? ORDER BY row_id DESC LIMIT ?"
_SELECT_CANDIDATES = (
    "SELECT alert_id, rule_id, host, system_id FROM alerts "
    "WHERE status = 'open' AND alert_id IN ({marks}) ORDER BY row_id"
)
_COVERING_SUPPRESSION = (
    "SELECT suppression_id, until_ns FROM suppressions "
    "WHERE rule_id = ? AND host = ? AND system_id = ? AND until_ns > ? "
    "ORDER BY until_ns DESC LIMIT 1"
)
# Keeps `IN (...)` lists under SQLite's old 999-parameter limit.
_IDS_PER_QUERY = 500


def check_triage(
    alert_id: str,
    action: str,
    *,
    actor: str,
    at_ns: int,
    assignee: str,
    comment: str,
    until_ns: int,
) -> None:
    """Refuse a malformed action before any write (TriageError, located at the alert)."""
    if action not in TRIAGE_ACTIONS:
        raise TriageError(
            f"unknown triage action {action!r} (one of {', '.join(TRIAGE_ACTIONS)})",
            location=alert_id,
        )
    if not actor.strip():
        raise TriageError("a triage action needs an actor", location=alert_id)
    if clamp(at_ns) != at_ns or clamp(until_ns) != until_ns:
        raise TriageError("a time does not fit in 64 bits", location=alert_id)
    if action == "assign" and not assignee.strip():
        raise TriageError("assign needs an assignee", location=alert_id)
    if len(comment) > MAX_COMMENT_CHARS:
        raise TriageError(
            f"comment is {len(comment)} characters, at most {MAX_COMMENT_CHARS} allowed",
            location=alert_id,
        )
    if any("\x00" in text for text in (actor, assignee, comment)):
        raise TriageError(
            "actor, assignee and comment cannot hold NUL characters", location=alert_id
        )
    if action == "suppress":
        if until_ns <= at_ns:
            raise TriageError("suppress needs an end (until) in the future", location=alert_id)
        if until_ns - at_ns > MAX_SUPPRESSION_NS:
            raise TriageError("a suppression lasts at most 30 days", location=alert_id)


def _entry(row: Sequence[Any]) -> TriageEntry:
    alert_id, at_ns, actor, action, status_after, assignee, comment, until_ns = row
    return TriageEntry(
        alert_id=alert_id,
        at_ns=int(at_ns),
        actor=actor,
        action=cast(TriageAction, action),
        status_after=status_after,
        assignee=assignee,
        comment=comment,
        until_ns=int(until_ns),
    )


def _suppression(row: Sequence[Any]) -> Suppression:
    sid, rule_id, host, system_id, created_ns, until_ns, actor, reason, source = row
    return Suppression(
        suppression_id=sid,
        rule_id=rule_id,
        host=host,
        system_id=system_id,
        created_ns=int(created_ns),
        until_ns=int(until_ns),
        actor=actor,
        reason=reason,
        source_alert_id=source,
    )


def _query_sql(query: AlertQuery) -> tuple[str, list[object], bool]:
    """The SELECT for an AlertQuery, its parameters, and whether it runs oldest first."""
    where: list[str] = []
    params: list[object] = []
    if query.min_severity > 0:
        where.append("severity >= ?")
        params.append(clamp(query.min_severity))
    for column, value in (
        ("system_id", query.system_id),
        ("rule_id", query.rule_id),
        ("status", query.status),
        ("host", query.host),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.systems is not None:
        systems = sorted(query.systems)
        where.append(f"system_id IN ({', '.join('?' * len(systems))})")
        params += systems
    forwards = query.after_row is not None
    if query.after_row is not None:
        where.append("row_id > ?")
        params.append(clamp(query.after_row))
    elif query.before_row is not None:
        where.append("row_id < ?")
        params.append(clamp(query.before_row))
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if forwards else "DESC"
    # Only fixed column names and "?" marks are interpolated; values are bound parameters.
    return (
        f"{ALERT_COLUMNS}{condition} ORDER BY row_id {order} LIMIT ?",
        [*params, query.limit],
        forwards,
    )


class TriageStoreMixin:
    """TriageStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def query_alerts(self, query: AlertQuery) -> list[StoredAlert]:
        check_limit(query.limit)
        if query.limit > MAX_ALERT_QUERY_LIMIT:
            raise ValueError(f"limit must be at most {MAX_ALERT_QUERY_LIMIT}, not {query.limit}")
        if query.status is not None and query.status not in ALERT_STATUSES:
            raise ValueError(f"unknown alert status {query.status!r}")
        if query.systems is not None and not query.systems:
            return []  # a caller scoped to no system sees nothing
        text, params, _ = _query_sql(query)
        with self._sql_read("query_alerts") as sql:
            rows = sql.all(text, params)
        return [stored_alert(row) for row in rows]

    def triage_alert(
        self,
        alert_id: str,
        action: TriageAction,
        *,
        actor: str,
        at_ns: int,
        assignee: str = "",
        comment: str = "",
        until_ns: int = 0,
        reason: str = "",
    ) -> StoredAlert | None:
        """See TriageStore.triage_alert; `reason` is kept on a suppression (and audited)."""
        check_triage(
            alert_id,
            action,
            actor=actor,
            at_ns=at_ns,
            assignee=assignee,
            comment=comment,
            until_ns=until_ns,
        )
        if "\x00" in reason or len(reason) > MAX_COMMENT_CHARS:
            raise TriageError("suppression reason is too long or holds NUL", location=alert_id)
        with self._sql_write("triage_alert") as sql:
            row = sql.one(_SELECT_FOR_TRIAGE.format(lock=sql.lock_row), (alert_id,))
            if row is None:
                return None
            before, old_assignee, rule_id, host, system_id = row
            status = STATUS_AFTER[action] or before
            new_assignee = assignee.strip() if action == "assign" else old_assignee
            sql(
                "UPDATE alerts SET status = ?, assignee = ?, updated_ns = ? WHERE alert_id = ?",
                (status, new_assignee, at_ns, alert_id),
            )
            kept_until = until_ns if action == "suppress" else 0
            sql(
                _INSERT_HISTORY,
                (alert_id, at_ns, actor, action, status, new_assignee, comment, kept_until),
            )
            detail: dict[str, object] = {"status_before": before, "status_after": status}
            if action == "assign":
                detail["assignee"] = new_assignee
            if comment:
                detail["comment"] = comment
            if action == "suppress":
                suppression_id = f"sup-{uuid.uuid4().hex}"
                sql(
                    _INSERT_SUPPRESSION,
                    (
                        suppression_id,
                        rule_id,
                        host,
                        system_id,
                        at_ns,
                        until_ns,
                        actor,
                        reason,
                        alert_id,
                    ),
                )
                detail |= {
                    "suppression_id": suppression_id,
                    "rule_id": rule_id,
                    "host": host,
                    "system_id": system_id,
                    "until_ns": until_ns,
                    "reason": reason,
                }
            append_in(sql, AuditEntry(actor, f"alert.{action}", alert_id, detail), at_ns)
            after = sql.one(f"{ALERT_COLUMNS} WHERE alert_id = ?", (alert_id,))
        return None if after is None else stored_alert(after)

    def triage_history(self, alert_id: str) -> list[TriageEntry]:
        with self._sql_read("triage_history") as sql:
            rows = sql.all(_SELECT_HISTORY, (alert_id,))
        return [_entry(row) for row in rows]

    def related_alerts(self, alert_id: str, *, limit: int = 20) -> list[StoredAlert]:
        check_limit(limit)
        with self._sql_read("related_alerts") as sql:
            row = sql.one(f"{ALERT_COLUMNS} WHERE alert_id = ?", (alert_id,))
            if row is None:
                return []
            alert = stored_alert(row).alert
            rows: list[tuple[Any, ...]] = []
            if alert.incident_id:
                rows = sql.all(
                    ALERT_COLUMNS + _SAME_INCIDENT,
                    (alert.incident_id, alert_id, limit),
                )
            if not rows:
                rows = sql.all(
                    ALERT_COLUMNS + _SAME_RULE_HOST,
                    (alert.rule_id, alert.host, alert_id, limit),
                )
        return [stored_alert(r) for r in rows]

    def active_suppressions(self, now_ns: int) -> list[Suppression]:
        with self._sql_read("active_suppressions") as sql:
            rows = sql.all(_SELECT_SUPPRESSIONS, (clamp(now_ns),))
        return [_suppression(row) for row in rows]

    def apply_suppressions(self, alert_ids: Sequence[str], now_ns: int) -> list[str]:
        wanted = list(dict.fromkeys(alert_ids))
        now_ns = clamp(now_ns)
        if not wanted:
            return []
        with self._sql_read("apply_suppressions") as sql:
            # The common case: nothing is suppressed, so no write transaction, no lookups.
            if sql.one("SELECT 1 FROM suppressions WHERE until_ns > ? LIMIT 1", (now_ns,)) is None:
                return []
        suppressed: list[str] = []
        with self._sql_write("apply_suppressions") as sql:
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                candidates = sql.all(_SELECT_CANDIDATES.format(marks=marks), chunk)
                for alert_id, rule_id, host, system_id in candidates:
                    match = sql.one(_COVERING_SUPPRESSION, (rule_id, host, system_id, now_ns))
                    if match is None:
                        continue
                    suppression_id, until_ns = match
                    sql(
                        "UPDATE alerts SET status = 'suppressed', updated_ns = ? "
                        "WHERE alert_id = ?",
                        (now_ns, alert_id),
                    )
                    sql(
                        _INSERT_HISTORY,
                        (
                            alert_id,
                            now_ns,
                            f"suppression:{suppression_id}",
                            "suppress",
                            "suppressed",
                            "",
                            "",
                            int(until_ns),
                        ),
                    )
                    suppressed.append(alert_id)
        return suppressed
