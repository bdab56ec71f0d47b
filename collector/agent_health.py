"""Agent health as metrics: how many agents are up, down or revoked, what their spools hold
and what they report having dropped.

The registry in the database is the truth about agents; this worker reads it periodically and
publishes aggregates, so the SOC's Prometheus sees "agents up and down" and "spool depths
reported by agents" without a per-agent label (the instrumentation contract keeps label sets
bounded: state, source and reason values come from fixed vocabularies, not from agents).
An agent is up when its last contact is within `down_after_s`; its spool depth and drops are
those of its last heartbeat (canhgac.v1.AgentStatus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Gauge

from canhgac.v1 import events_pb2
from collector.storage.base import AgentRecord
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.agent_health")

NS = 1_000_000_000
STATES = ("up", "down", "revoked", "never_seen")
# Drop reasons and sources are the agent's fixed vocabularies; anything else is folded into
# "other" so a misbehaving agent cannot grow the label set.
MAX_LABEL_LEN = 40


@dataclass(frozen=True)
class AgentHealthMetrics:
    agents: Gauge
    spool_events: Gauge
    spool_bytes: Gauge
    drops_reported: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AgentHealthMetrics:
        return cls(
            agents=Gauge(
                "canhgac_collector_agents",
                "Agents known to the collector, by state (up: seen within the down-after "
                "interval; revoked; never_seen: enrolled but never connected)",
                ["state"],
                registry=registry,
            ),
            spool_events=Gauge(
                "canhgac_collector_agent_spool_events",
                "Events waiting in agents' spools at their last heartbeat (sum and max over "
                "agents that are not revoked)",
                ["stat"],
                registry=registry,
            ),
            spool_bytes=Gauge(
                "canhgac_collector_agent_spool_bytes",
                "Bytes in agents' spools at their last heartbeat (sum and max)",
                ["stat"],
                registry=registry,
            ),
            drops_reported=Gauge(
                "canhgac_collector_agent_drops_reported",
                "Events the agents report having dropped since they started, summed over "
                "agents, by source kind and reason",
                ["source", "reason"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class HealthSummary:
    states: dict[str, int]
    spool_events_sum: int
    spool_events_max: int
    spool_bytes_sum: int
    spool_bytes_max: int
    drops: dict[tuple[str, str], int]
    undecodable: int


def _label(value: str) -> str:
    ok = value and len(value) <= MAX_LABEL_LEN and all(c.isalnum() or c in "_-." for c in value)
    return value if ok else "other"


def summarise(agents: Iterable[AgentRecord], now_ns: int, down_after_s: int) -> HealthSummary:
    states: Tally[str] = Tally({s: 0 for s in STATES})
    spool_events: list[int] = []
    spool_bytes: list[int] = []
    drops: Tally[tuple[str, str]] = Tally()
    undecodable = 0
    for agent in agents:
        if agent.enrollment_status == "revoked":
            states["revoked"] += 1
            continue
        if not agent.last_seen_ns:
            states["never_seen"] += 1
            continue
        up = now_ns - agent.last_seen_ns <= down_after_s * NS
        states["up" if up else "down"] += 1
        if not agent.status:
            continue
        try:
            status = events_pb2.AgentStatus.FromString(agent.status)
        except DecodeError:
            undecodable += 1
            continue
        spool_events.append(status.spool_events)
        spool_bytes.append(status.spool_bytes)
        for drop in status.drops:
            # A source id is "kind" or "kind:instance"; the kind is the bounded part.
            source = _label(drop.source.partition(":")[0])
            drops[(source, _label(drop.reason))] += drop.count
    return HealthSummary(
        states=dict(states),
        spool_events_sum=sum(spool_events),
        spool_events_max=max(spool_events, default=0),
        spool_bytes_sum=sum(spool_bytes),
        spool_bytes_max=max(spool_bytes, default=0),
        drops=dict(drops),
        undecodable=undecodable,
    )


class AgentHealthWorker:
    """Publishes `summarise` of the agent registry every `interval_s` seconds."""

    def __init__(
        self,
        store: StoreWorker,
        metrics: AgentHealthMetrics,
        *,
        down_after_s: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._down_after_s = down_after_s
        self._clock_ns = clock_ns
        self._drop_labels: set[tuple[str, str]] = set()
        self.latest: HealthSummary | None = None

    async def run_once(self) -> HealthSummary:
        agents = await self._store.run(self._store.store.list_agents)
        summary = summarise(agents, self._clock_ns(), self._down_after_s)
        m = self._metrics
        for state, n in summary.states.items():
            m.agents.labels(state).set(n)
        m.spool_events.labels("sum").set(summary.spool_events_sum)
        m.spool_events.labels("max").set(summary.spool_events_max)
        m.spool_bytes.labels("sum").set(summary.spool_bytes_sum)
        m.spool_bytes.labels("max").set(summary.spool_bytes_max)
        # A label pair that disappears (its agents revoked or restarted) goes to 0, not stale.
        for labels in self._drop_labels - summary.drops.keys():
            m.drops_reported.labels(*labels).set(0)
        for labels, n in summary.drops.items():
            m.drops_reported.labels(*labels).set(n)
        self._drop_labels |= summary.drops.keys()
        if summary.undecodable:
            log.warning("%d agent heartbeats could not be decoded", summary.undecodable)
        self.latest = summary
        return summary

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end health reporting
                log.exception("agent health could not be computed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue
