"""The storage contract every backend (SQLite, PostgreSQL) fulfils.

Methods are synchronous and may block: the collector calls them from a worker thread, never on
the event loop. One Store object is used by one thread at a time unless the backend says
otherwise. The shared contract tests in tests/collector/storage/ define the behaviour.
Every failure of the database is raised as StorageError (MigrationError for schema problems);
arguments outside the contract (a seq beyond SQL BIGINT, a limit below 1) raise ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from canhgac.v1 import alert_pb2, events_pb2
from collector.audit.model import AuditStore
from collector.dossiers.incidents import IncidentStore
from collector.dossiers.store import DossierStore
from collector.evidence.store import EvidenceReads
from collector.forward.model import OutboxStore
from collector.storage.enrollment import EnrollmentStore
from collector.triage.model import TriageStore
from collector.web.auth.store import AuthStore


@dataclass(frozen=True)
class BatchToStore:
    """One agent batch handed to `Store.store_batches`."""

    agent_id: str
    seq: int
    events: Sequence[events_pb2.Event]
    received_ns: int


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
    # Triage (collector/triage): who handles it, and when its triage state last changed.
    assignee: str = ""
    updated_ns: int = 0


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
    # Enrollment: written only by the EnrollmentStore methods (upsert_agent leaves them as
    # they are). enrollment_status is "" (never enrolled), "enrolled" or "revoked".
    enrollment_status: str = ""
    system_id: str = ""
    cert_serial: str = ""
    cert_not_after_ns: int = 0
    enrolled_ns: int = 0
    revoked_ns: int = 0


class Store(
    EnrollmentStore,
    DossierStore,
    IncidentStore,
    AuthStore,
    OutboxStore,
    EvidenceReads,
    AuditStore,
    TriageStore,
    Protocol,
):
    """Durable state of the collector: events, alerts, agents (and, through EnrollmentStore,
    enrollment tokens and agents' certificates; through DossierStore, information systems,
    their dossiers and assets; through IncidentStore, incidents and their report log; through
    AuthStore, console users and API tokens; through AuditStore, the audit hash chain; through
    TriageStore, alert triage and the console's alert queries)."""

    def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force.

        Raises MigrationError when the database has a newer schema than this program knows.
        """
        ...

    def schema_version(self) -> int:
        """The schema version in force; 0 for a database never migrated."""
        ...

    def store_batch(
        self, agent_id: str, seq: int, events: Sequence[events_pb2.Event], received_ns: int
    ) -> bool:
        """Store one batch atomically and durably, keyed by (agent_id, seq).

        Returns True when stored, False when that (agent_id, seq) was stored before (nothing is
        written then). Either all events of the batch are stored, or none. When this returns
        True the batch is durable (it survives a crash of the process or the machine), so the
        collector may acknowledge it. An empty batch is stored like any other.

        `agent_id` is the authenticated agent: it is the agent every agent_id filter below
        matches, whatever the events' own agent_id field says. `seq` must be in 0..2**63-1.
        """
        ...

    def store_batches(self, batches: Sequence[BatchToStore]) -> list[bool]:
        """Store several batches in ONE transaction (group commit: one durable sync for all).

        Returns, per input batch and in order, True when stored and False when its
        (agent_id, seq) was already stored (earlier, or earlier in the same call). Either every
        new batch of the call is stored, or none is.
        """
        ...

    def last_seq(self, agent_id: str) -> int:
        """Highest batch seq stored for the agent (0 when none)."""
        ...

    def count_events(self, *, agent_id: str | None = None) -> int:
        """Number of events stored, or of those stored in batches of one agent."""
        ...

    def events(
        self, *, after_row: int = 0, limit: int = 1000, agent_id: str | None = None
    ) -> list[StoredEvent]:
        """Events with row id greater than `after_row`, in row-id order, at most `limit` (>= 1).

        Pass the last row id of one page as `after_row` to get the next.
        """
        ...

    def events_by_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]:
        """Stored events with one of these ids, in row-id order; unknown ids are skipped.

        An event id stored more than once (re-sent in a new batch) gives each stored copy.
        """
        ...

    def delete_events_before(
        self,
        before_ns: int,
        *,
        agent_ids: Sequence[str] | None = None,
        except_agent_ids: Sequence[str] = (),
        limit: int = 10_000,
    ) -> int:
        """Delete at most `limit` (>= 1) expired events in one transaction; return how many.

        An event has expired when both its own time (time_ns) and its arrival (received_ns)
        are before `before_ns`, so an agent with a clock far in the past cannot lose its events
        early. Only events of `agent_ids` (None: every agent) and not of `except_agent_ids` go.

        The batches rows stay: they are the deduplication record of (agent_id, seq) and the
        source of last_seq, so a batch re-sent after its events expired is still recognised
        and not stored again; their `events` count stays the number stored at the time.
        """
        ...

    def upsert_agent(self, agent: AgentRecord) -> None:
        """Insert or update an agent; first_seen_ns keeps its first value.

        A first_seen_ns of 0 means "unknown" and is replaced by the next non-zero value. Every
        other field up to `status` takes the new record's value; the enrollment fields are
        not written.
        """
        ...

    def get_agent(self, agent_id: str) -> AgentRecord | None: ...

    def list_agents(self) -> list[AgentRecord]: ...

    def insert_alert(self, alert: alert_pb2.Alert) -> bool:
        """Store an alert with status "open"; False (and nothing written) if its id exists."""
        ...

    def insert_alerts(
        self, alerts: Sequence[alert_pb2.Alert], outbox: Sequence[str] = ()
    ) -> list[bool]:
        """Store several alerts in one transaction; per alert, False if its id existed.

        Each NEW alert is queued in the outbox for every destination named in `outbox`, in
        the same transaction (collector/forward): stored implies queued."""
        ...

    def alerts(self, *, after_row: int = 0, limit: int = 100) -> list[StoredAlert]:
        """Alerts with row id greater than `after_row`, oldest first."""
        ...

    def recent_alerts(self, limit: int = 50) -> list[StoredAlert]:
        """The `limit` most recent alerts, oldest of them first."""
        ...

    def get_alert(self, alert_id: str) -> StoredAlert | None: ...

    def close(self) -> None:
        """Release the database; later calls raise StorageError. Closing twice is allowed."""
        ...
