"""Event statistics of one system over a period, in bounded memory.

One pass over the period's events in row-id pages (`EvidenceReads.period_events`) counts per
source and category, per day (Vietnam time) and per agent; the raw-events writer, when asked
for, rides on the same pass. Gaps (an agent silent for longer than a threshold) need the
events in time order, which row-id order is only roughly: they come from a second pass per
agent over the (agent_id, time_ns) index, reading only distinct times. Memory holds counters
(bounded by sources x categories, days, agents), never events.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from canhgac.v1 import events_pb2
from collector.dossiers.clock import VN_TZ
from collector.evidence.store import EvidenceReads, PeriodEventRow

PAGE_ROWS = 5000
DEFAULT_GAP_S = 3600


@dataclass
class AgentCoverage:
    agent_id: str
    hostname: str
    events: int = 0
    first_ns: int = 0
    last_ns: int = 0
    days: set[str] = field(default_factory=set)


@dataclass
class EventStats:
    """The counters of one pass; `to_json` is what the bundle holds."""

    per_source_category: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_day: Counter[str] = field(default_factory=Counter)
    agents: dict[str, AgentCoverage] = field(default_factory=dict)
    undecodable: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.per_day.values())

    def add(self, row: PeriodEventRow, event: events_pb2.Event | None) -> None:
        source = event.source if event is not None else "?"
        day = dt.datetime.fromtimestamp(row.time_ns / 1e9, VN_TZ).date().isoformat()
        self.per_source_category[(source, row.category)] += 1
        self.per_day[day] += 1
        cov = self.agents[row.agent_id]
        cov.events += 1
        cov.first_ns = row.time_ns if not cov.first_ns else min(cov.first_ns, row.time_ns)
        cov.last_ns = max(cov.last_ns, row.time_ns)
        cov.days.add(day)

    def to_json(self, gap_threshold_s: int) -> dict[str, Any]:
        return {
            "total_events": self.total,
            "undecodable_events": self.undecodable,
            "day_zone": "Asia/Ho_Chi_Minh",
            "per_source_category": [
                {"source": s, "category": c, "events": n}
                for (s, c), n in sorted(self.per_source_category.items())
            ],
            "per_day": [{"day": d, "events": n} for d, n in sorted(self.per_day.items())],
            "agents": [
                {
                    "agent_id": a.agent_id,
                    "hostname": a.hostname,
                    "events": a.events,
                    "first_ns": a.first_ns,
                    "last_ns": a.last_ns,
                    "days_with_events": len(a.days),
                }
                for a in sorted(self.agents.values(), key=lambda a: a.agent_id)
            ],
            "gap_threshold_s": gap_threshold_s,
            "gaps": self.gaps,
        }


def collect_stats(
    store: EvidenceReads,
    agents: dict[str, str],
    from_ns: int,
    before_ns: int,
    *,
    on_event: Callable[[PeriodEventRow, events_pb2.Event | None], None] | None = None,
    page_rows: int = PAGE_ROWS,
) -> EventStats:
    """Count the events of `agents` (id -> host name) in [from_ns, before_ns); call
    `on_event` for each in row-id order (the raw-events writer)."""
    stats = EventStats(agents={a: AgentCoverage(a, h) for a, h in agents.items()})
    after = 0
    while True:
        page = store.period_events(
            from_ns=from_ns, before_ns=before_ns, after_row=after, limit=page_rows
        )
        for row in page:
            if row.agent_id not in agents:
                continue
            try:
                event: events_pb2.Event | None = events_pb2.Event.FromString(row.data)
            except DecodeError:
                event = None
                stats.undecodable += 1
            stats.add(row, event)
            if on_event is not None:
                on_event(row, event)
        if len(page) < page_rows:
            return stats
        after = page[-1].row_id


def find_gaps(
    store: EvidenceReads,
    agent_ids: Collection[str],
    from_ns: int,
    before_ns: int,
    threshold_s: int,
    *,
    page_rows: int = 10_000,
) -> list[dict[str, Any]]:
    """Intervals longer than `threshold_s` in which an agent sent no event, the period's start
    and end counting as bounds (an agent silent the whole period has one gap: all of it)."""
    threshold_ns = threshold_s * 10**9
    gaps: list[dict[str, Any]] = []
    for agent_id in sorted(agent_ids):
        previous = from_ns
        after = from_ns - 1
        while True:
            times = store.agent_event_times(
                agent_id, after_ns=after, before_ns=before_ns, limit=page_rows
            )
            for t in times:
                if t - previous > threshold_ns:
                    gaps.append(_gap(agent_id, previous, t))
                previous = t
            if len(times) < page_rows:
                break
            after = times[-1]
        if before_ns - previous > threshold_ns:
            gaps.append(_gap(agent_id, previous, before_ns))
    return gaps


def _gap(agent_id: str, start: int, end: int) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "from_ns": start,
        "to_ns": end,
        "seconds": (end - start) // 10**9,
        "from": dt.datetime.fromtimestamp(start / 1e9, VN_TZ).isoformat(),
        "to": dt.datetime.fromtimestamp(end / 1e9, VN_TZ).isoformat(),
    }
