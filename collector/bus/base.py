"""The bus between ingest and detection.

Ingest publishes every batch it has durably stored; detection consumes them in order per agent.
A full bus makes `publish` wait (backpressure reaches the agents as slower acknowledgements);
it never drops. The embedded wiring uses LocalBus; scale-out will use NATS JetStream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from canhgac.v1 import events_pb2


@dataclass(frozen=True)
class StoredBatch:
    """A batch that is already durably stored."""

    agent_id: str
    seq: int
    events: list[events_pb2.Event]
    # The AgentMessage as received (its events' agent_id may differ from `agent_id`, which
    # wins); lets a detection process parse the batch itself instead of the ingest
    # re-serializing it.
    raw: bytes = b""


class Bus(Protocol):
    async def publish(self, batch: StoredBatch) -> None: ...

    async def next(self) -> StoredBatch:
        """The next batch, waiting until one is there."""
        ...

    def depth(self) -> int: ...
