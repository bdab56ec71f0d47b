"""The agent's account of its own health, sent to the collector in heartbeats."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.sources.base import SourceHealth
from canhgac import __version__
from canhgac.ids import new_id
from canhgac.v1 import events_pb2


def rss_bytes(proc_root: Path = Path("/proc")) -> int:
    """Resident set size of this process, from /proc/self/statm (0 where unavailable)."""
    try:
        pages = int((proc_root / "self" / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class DropCounter:
    """Counts of events dropped by the agent itself, keyed by (where, why)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, source: str, reason: str, n: int = 1) -> None:
        key = (source, reason)
        self.counts[key] = self.counts.get(key, 0) + n


@dataclass
class StatusReporter:
    """Builds AgentStatus messages; CPU percent is measured between two calls."""

    started_ns: int
    clock_ns: Callable[[], int] = time.time_ns
    drops: DropCounter = field(default_factory=DropCounter)
    # Start from the CPU used so far, so the first figure covers only the first interval.
    _last_cpu: float = field(default_factory=lambda: sum(os.times()[:2]))
    _last_wall: float = field(default_factory=time.monotonic)

    def build(
        self,
        sources: Mapping[str, SourceHealth],
        spool_events: int,
        spool_bytes: int,
        spool_drops: Mapping[str, int] | None = None,
    ) -> events_pb2.AgentStatus:
        times = os.times()
        cpu, wall = times.user + times.system, time.monotonic()
        elapsed = wall - self._last_wall
        pct = 100.0 * (cpu - self._last_cpu) / elapsed if elapsed > 0 else 0.0
        self._last_cpu, self._last_wall = cpu, wall
        status = events_pb2.AgentStatus(
            version=__version__,
            rss_bytes=rss_bytes(),
            cpu_percent=round(pct, 2),
            spool_events=spool_events,
            spool_bytes=spool_bytes,
            started_ns=self.started_ns,
        )
        for (where, why), n in sorted(self.drops.counts.items()):
            status.drops.add(source=where, reason=why, count=n)
        for why, n in sorted((spool_drops or {}).items()):
            status.drops.add(source="spool", reason=why, count=n)
        total = 0
        for sid, h in sorted(sources.items()):
            total += h.events
            status.sources.add(
                source=sid, state=h.state, mode=h.mode, detail=h.detail, events=h.events
            )
            for reason, n in sorted(h.unparsed.items()):
                status.drops.add(source=sid, reason=f"unparsed:{reason}", count=n)
        status.events_total = total
        return status

    def event(self, agent_id: str, host: str, status: events_pb2.AgentStatus) -> events_pb2.Event:
        """An AgentStatus as an event, stored at the collector like any other."""
        now = self.clock_ns()
        return events_pb2.Event(
            id=new_id(now),
            time_ns=now,
            created_ns=now,
            agent_id=agent_id,
            host=host,
            category="host",
            type="info",
            action="agent_status",
            source="agent",
            agent_status=status,
        )
