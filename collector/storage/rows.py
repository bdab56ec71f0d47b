"""Conversions between the storage contract's objects and table rows, shared by the backends.

The serialized protobuf in each row's `data` column is the source of truth; the other columns
are copies of header fields kept for filtering and indexing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import DecodeError

from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2, events_pb2
from collector.storage.base import AgentRecord, StoredAlert, StoredEvent

# SQL BIGINT is signed; the wire's uint64 seq must fit in it to be stored.
MAX_BIGINT = 2**63 - 1

# Row layouts, in the column order every backend's SQL uses.
EventRow = tuple[str, str, int, int, int, str, bytes]
AlertRow = tuple[str, str, int, int, str, str, str, bytes]
AgentRow = tuple[str, str, str, int, int, int, str, bytes]


def check_batch_key(seq: int, received_ns: int) -> None:
    """Reject values SQL BIGINT cannot hold, before any write starts."""
    if not 0 <= seq <= MAX_BIGINT:
        raise ValueError(f"batch seq {seq} is outside 0..{MAX_BIGINT}")
    if not -MAX_BIGINT - 1 <= received_ns <= MAX_BIGINT:
        raise ValueError(f"received_ns {received_ns} does not fit in 64 bits")


def check_limit(limit: int) -> None:
    # SQLite reads a negative LIMIT as "no limit" and PostgreSQL rejects it: refuse both alike.
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def event_rows(
    agent_id: str, seq: int, received_ns: int, events: Sequence[events_pb2.Event]
) -> list[EventRow]:
    """Rows laid out as EventRow. The batch's agent_id (the authenticated peer) fills the
    agent_id column; the event's own copy stays untouched in `data`."""
    # A comprehension, not a helper per row: this is the ingest hot path.
    return [
        (
            e.id,
            agent_id,
            seq,
            e.time_ns,
            received_ns,
            e.category,
            e.SerializeToString(),
        )
        for e in events
    ]


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """Build a StoredEvent from a row (row_id, seq, received_ns, data)."""
    row_id, seq, received_ns, data = row
    try:
        event = events_pb2.Event.FromString(bytes(data))
    except DecodeError as exc:
        raise StorageError(f"cannot decode event: {exc}", location=f"events row {row_id}") from exc
    return StoredEvent(row_id=row_id, seq=seq, received_ns=received_ns, event=event)


def alert_row(alert: alert_pb2.Alert) -> AlertRow:
    return (
        alert.id,
        alert.rule_id,
        alert.severity,
        alert.created_ns,
        alert.agent_id,
        alert.host,
        alert.system_id,
        alert.SerializeToString(),
    )


def stored_alert(row: Sequence[Any]) -> StoredAlert:
    """Build a StoredAlert from a row (row_id, status, data[, assignee, updated_ns])."""
    row_id, status, data = row[:3]
    try:
        alert = alert_pb2.Alert.FromString(bytes(data))
    except DecodeError as exc:
        raise StorageError(f"cannot decode alert: {exc}", location=f"alerts row {row_id}") from exc
    assignee, updated_ns = (row[3], int(row[4])) if len(row) >= 5 else ("", 0)
    return StoredAlert(
        row_id=row_id, status=status, alert=alert, assignee=assignee, updated_ns=updated_ns
    )


def agent_row(agent: AgentRecord) -> AgentRow:
    return (
        agent.agent_id,
        agent.hostname,
        agent.version,
        agent.first_seen_ns,
        agent.last_seen_ns,
        agent.last_seq,
        agent.peer,
        agent.status,
    )


def agent_record(row: Sequence[Any]) -> AgentRecord:
    """Build an AgentRecord from a row: AgentRow's columns, then enrollment_status, system_id,
    cert_serial, cert_not_after_ns, enrolled_ns, revoked_ns."""
    agent_id, hostname, version, first_seen_ns, last_seen_ns, last_seq, peer, status = row[:8]
    return AgentRecord(
        agent_id=agent_id,
        hostname=hostname,
        version=version,
        first_seen_ns=first_seen_ns,
        last_seen_ns=last_seen_ns,
        last_seq=last_seq,
        peer=peer,
        status=bytes(status),
        enrollment_status=row[8],
        system_id=row[9],
        cert_serial=row[10],
        cert_not_after_ns=row[11],
        enrolled_ns=row[12],
        revoked_ns=row[13],
    )
