"""What the spool hands out and reports: batches, statistics, drop and start-up reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from canhgac.v1 import agent_pb2, events_pb2

# The label under which the spool's drops appear in AgentStatus.drops.
DROP_SOURCE = "spool"
# An append would push the spool past max_bytes; the oldest unassigned events went.
DROP_SPOOL_FULL = "spool_full"
# A stored event failed its checksum or did not parse; it cannot be sent.
DROP_CORRUPT_EVENT = "corrupt_event"


@dataclass(frozen=True)
class SpoolBatch:
    """One batch exactly as the collector must see it.

    A seq is bound to its events when the batch is first assigned; every later load of the same
    seq (after a reconnect or a restart) carries the same events in the same order, so the
    collector's (agent_id, seq) deduplication is sound. `size_bytes` is the encoded size of the
    events inside an EventBatch (each event plus its field tag and length prefix); the envelope
    (agent_id, seq, created_ns) adds under 64 bytes. `created_ns` is when the batch was assigned.
    """

    seq: int
    events: list[events_pb2.Event]
    size_bytes: int
    created_ns: int

    def to_proto(self, agent_id: str) -> agent_pb2.EventBatch:
        return agent_pb2.EventBatch(
            agent_id=agent_id, seq=self.seq, events=self.events, created_ns=self.created_ns
        )


@dataclass(frozen=True)
class SpoolStats:
    """A snapshot of the spool for metrics and the agent's status.

    `drops` are lifetime totals by reason (kept in the database, so they survive restarts but not
    a quarantine); `quarantined` counts damaged spool files kept beside the spool.
    """

    events: int
    bytes: int
    assigned_batches: int
    assigned_events: int
    # Event time of the oldest stored event (in spool order), None when the spool is empty.
    oldest_event_ns: int | None
    last_seq: int
    drops: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0


@dataclass(frozen=True)
class DropReport:
    """Drops not yet reported to the collector, by reason, and when (by the spool's clock)."""

    counts: dict[str, int]
    first_ns: int
    last_ns: int

    def to_proto(self) -> list[events_pb2.DropCount]:
        return [
            events_pb2.DropCount(source=DROP_SOURCE, reason=reason, count=count)
            for reason, count in sorted(self.counts.items())
        ]


@dataclass(frozen=True)
class QuarantinedFile:
    """A damaged spool moved aside: where it was, where its files went, and why."""

    path: Path
    moved_to: tuple[Path, ...]
    reason: str


@dataclass(frozen=True)
class StartupReport:
    """What opening the spool found. `durable` is False when the spool fell back to memory."""

    durable: bool
    quarantined: tuple[QuarantinedFile, ...]
    events: int
    assigned_batches: int
    last_seq: int
    detail: str = ""
