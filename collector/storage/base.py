"""The storage contract every backend (SQLite, PostgreSQL) fulfils.

Methods are synchronous and may block: the collector calls them from a worker thread, never on
the event loop. One Store object is used by one thread at a time unless the backend says
otherwise. The shared contract tests in tests/collector/storage/ define the behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from canhgac.v1 import alert_pb2, events_pb2


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: its row id (a cursor, increasing in insertion order) and the event."""

    row_id: int
    seq: int
    received_ns: int
    event: events_pb2.Event


@dataclass(frozen=True)
class StoredAlert:
    """An alert as stored, with its row id (a cursor) and triage status."""

    row_id: int
    status: str
    alert: alert_pb2.Alert


@dataclass(frozen=True)
class AgentRecord:
    """What the collector knows about one agent."""

    agent_id: str
    hostname: str = ""
    version: str = ""
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    last_seq: int = 0
    peer: str = ""
    # Serialized canhgac.v1.AgentStatus from the last heartbeat (empty when none yet).
    status: bytes = b""


class Store(Protocol):
    """Durable state of the collector: events, alerts, agents."""

    def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force.

        Raises MigrationError when the database has a newer schema than this program knows.
        """
        ...

    def schema_version(self) -> int: ...

    def store_batch(
        self, agent_id: str, seq: int, events: Sequence[events_pb2.Event], received_ns: int
    ) -> bool:
        """Store one batch atomically and durably, keyed by (agent_id, seq).

        Returns True when stored, False when that (agent_id, seq) was stored before (nothing is
        written then). Either all events of the batch are stored, or none.
        """
        ...

    def last_seq(self, agent_id: str) -> int:
        """Highest batch seq stored for the agent (0 when none)."""
        ...

    def count_events(self, *, agent_id: str | None = None) -> int: ...

    def events(
        self, *, after_row: int = 0, limit: int = 1000, agent_id: str | None = None
    ) -> list[StoredEvent]:
        """Events with row id greater than `after_row`, in row-id order."""
        ...

    def events_by_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]: ...

    def upsert_agent(self, agent: AgentRecord) -> None:
        """Insert or update an agent; first_seen_ns keeps its first value."""
        ...

    def get_agent(self, agent_id: str) -> AgentRecord | None: ...

    def list_agents(self) -> list[AgentRecord]: ...

    def insert_alert(self, alert: alert_pb2.Alert) -> bool:
        """Store an alert with status "open"; False (and nothing written) if its id exists."""
        ...

    def alerts(self, *, after_row: int = 0, limit: int = 100) -> list[StoredAlert]:
        """Alerts with row id greater than `after_row`, oldest first."""
        ...

    def get_alert(self, alert_id: str) -> StoredAlert | None: ...

    def close(self) -> None: ...
