"""OutboxStore in SQL written once for both backends (see collector/storage/enrollment_sql.py).

`enqueue_in` is also called by `insert_alerts(..., outbox=...)` and `open_or_attach` inside
their own write transaction, which is what makes "stored" imply "queued for every upstream".
The outbox keeps its state only in the database, so a restarted collector resumes where the
last one stopped; an item delivered twice (crash between send and mark) is deduplicated by
the receiver on its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from collector.audit.model import AuditEntry
from collector.audit.store import append_in
from collector.forward.model import (
    ITEM_KINDS,
    DestinationHealth,
    ItemKind,
    ItemState,
    OutboxItem,
)
from collector.storage.enrollment_sql import Sql

_SELECT = (
    "SELECT destination, kind, item_id, created_ns, state, attempts, next_attempt_ns, "
    "last_error, delivered_ns FROM outbox"
)
_INSERT = (
    "INSERT INTO outbox (destination, kind, item_id, state, attempts, next_attempt_ns, "
    "last_error, created_ns, delivered_ns) VALUES (?, ?, ?, 'pending', 0, 0, '', ?, 0) "
    "ON CONFLICT (destination, kind, item_id) DO NOTHING"
)
_DUE = (
    _SELECT + " WHERE destination = ? AND state = 'pending' "
    "AND next_attempt_ns <= ? ORDER BY next_attempt_ns, created_ns, kind, item_id LIMIT ?"
)
_ITEMS = (
    _SELECT + " WHERE (? = 0 OR destination = ?) AND (? = 0 OR state = ?) "
    "ORDER BY created_ns, destination, kind, item_id LIMIT ?"
)
_DELIVERED = (
    "UPDATE outbox SET state = 'delivered', delivered_ns = ?, last_error = '' "
    "WHERE destination = ? AND kind = ? AND item_id = ? AND state = 'pending'"
)
_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_ns = ?, "
    "state = CASE WHEN ? = 1 OR attempts + 1 >= ? THEN 'quarantined' ELSE 'pending' END "
    "WHERE destination = ? AND kind = ? AND item_id = ? AND state = 'pending' "
    "RETURNING state"
)
_RETRY = (
    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_ns = ? "
    "WHERE destination = ? AND kind = ? AND item_id = ? AND state = 'quarantined'"
)
# Longest error text kept: enough for a reason and a message, bounded against a huge body.
MAX_ERROR = 500


def _check_kind(kind: str) -> ItemKind:
    if kind not in ITEM_KINDS:
        raise ValueError(f"outbox item kind must be one of {', '.join(ITEM_KINDS)}, not {kind!r}")
    return kind


def _item(row: Sequence[Any]) -> OutboxItem:
    dest, kind, item_id, created, state, attempts, next_ns, error, delivered = row
    return OutboxItem(
        destination=str(dest),
        kind=_check_kind(str(kind)),
        item_id=str(item_id),
        created_ns=int(created),
        state=state,
        attempts=int(attempts),
        next_attempt_ns=int(next_ns),
        last_error=str(error),
        delivered_ns=int(delivered),
    )


def enqueue_in(
    sql: Sql, destinations: Sequence[str], kind: ItemKind, item_ids: Sequence[str], at_ns: int
) -> int:
    """Queue each item for each destination inside the caller's write transaction."""
    _check_kind(kind)
    new = 0
    for destination in dict.fromkeys(destinations):
        for item_id in dict.fromkeys(item_ids):
            new += sql.changed(_INSERT, (destination, kind, item_id, at_ns))
    return new


class OutboxStoreMixin:
    """OutboxStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def enqueue(
        self, destinations: Sequence[str], kind: ItemKind, item_ids: Sequence[str], *, at_ns: int
    ) -> int:
        with self._sql_write("enqueue") as sql:
            return enqueue_in(sql, destinations, kind, item_ids, at_ns)

    def due_items(self, destination: str, now_ns: int, limit: int) -> list[OutboxItem]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._sql_read("due_items") as sql:
            return [_item(r) for r in sql.all(_DUE, (destination, now_ns, limit))]

    def mark_delivered(
        self, destination: str, kind: ItemKind, item_ids: Sequence[str], at_ns: int
    ) -> None:
        with self._sql_write("mark_delivered") as sql:
            for item_id in item_ids:
                sql(_DELIVERED, (at_ns, destination, kind, item_id))

    def mark_failed(
        self,
        destination: str,
        kind: ItemKind,
        item_ids: Sequence[str],
        *,
        error: str,
        next_attempt_ns: int,
        max_attempts: int,
        permanent: bool = False,
    ) -> list[str]:
        quarantined = []
        params = (error[:MAX_ERROR], next_attempt_ns, int(permanent), max_attempts, destination)
        with self._sql_write("mark_failed") as sql:
            for item_id in item_ids:
                rows = sql.all(_FAILED, (*params, kind, item_id))
                if rows and rows[0][0] == "quarantined":
                    quarantined.append(item_id)
        return quarantined

    def outbox_items(
        self, destination: str | None = None, state: ItemState | None = None, limit: int = 100
    ) -> list[OutboxItem]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params = (int(destination is not None), destination or "", int(state is not None))
        with self._sql_read("outbox_items") as sql:
            rows = sql.all(_ITEMS, (*params, state or "", limit))
        return [_item(r) for r in rows]

    def retry_quarantined(
        self,
        destination: str,
        kind: ItemKind,
        item_id: str,
        now_ns: int,
        audit: AuditEntry | None = None,
    ) -> bool:
        with self._sql_write("retry_quarantined") as sql:
            if sql.changed(_RETRY, (now_ns, destination, kind, item_id)) != 1:
                return False
            if audit is not None:
                append_in(sql, audit, now_ns)
            return True

    def outbox_destinations(self) -> list[str]:
        with self._sql_read("outbox_destinations") as sql:
            rows = sql.all(
                "SELECT DISTINCT destination FROM outbox WHERE state <> 'delivered' "
                "ORDER BY destination"
            )
        return [str(r[0]) for r in rows]

    def outbox_health(self, destination: str) -> DestinationHealth:
        with self._sql_read("outbox_health") as sql:
            counts = dict(
                sql.all(
                    "SELECT state, COUNT(*) FROM outbox WHERE destination = ? GROUP BY state",
                    (destination,),
                )
            )
            oldest = sql.one(
                "SELECT MIN(created_ns) FROM outbox WHERE destination = ? AND state = 'pending'",
                (destination,),
            )
            last = sql.one(
                "SELECT MAX(delivered_ns) FROM outbox WHERE destination = ? "
                "AND state = 'delivered'",
                (destination,),
            )
            errors = sql.all(
                "SELECT last_error, COUNT(*) FROM outbox WHERE destination = ? "
                "AND state <> 'delivered' AND last_error <> '' GROUP BY last_error",
                (destination,),
            )
        failures: dict[str, int] = {}
        for text, n in errors:
            reason = str(text).split(":", 1)[0]
            failures[reason] = failures.get(reason, 0) + int(n)
        return DestinationHealth(
            destination=destination,
            backlog=int(counts.get("pending", 0)),
            quarantined=int(counts.get("quarantined", 0)),
            oldest_pending_ns=int(oldest[0] or 0) if oldest else 0,
            last_success_ns=int(last[0] or 0) if last else 0,
            failures_by_reason=failures,
        )
