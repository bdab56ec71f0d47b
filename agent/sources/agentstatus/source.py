"""The agent_status source: the agent's account of itself, stored at the collector as events.

Heartbeats already carry an AgentStatus to the collector's agent registry (the latest only).
This source also writes one into the event stream every `interval_s`, so the agent's memory,
CPU, per-source counts and drops have a history the collector keeps, searches and can alert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from agent.sources.base import EventSink, Source, SourceContext
from canhgac.strictmodel import Field, StrictModel
from canhgac.v1 import events_pb2

SOURCE_ID = "agent_status"

StatusSnapshot = Callable[[], Awaitable[events_pb2.AgentStatus]]


class AgentStatusConfig(StrictModel):
    interval_s: int = Field(300, ge=10, le=86_400)


class AgentStatusSource(Source):
    """Emits one `agent_status` event (category host) at start and every `interval_s`.

    The CPU figure is this source's own: the agent's CPU time over the interval since its
    previous event, in percent of one core.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: AgentStatusConfig | None = None,
        *,
        snapshot: StatusSnapshot,
        cpu_seconds: Callable[[], float] = lambda: sum(os.times()[:2]),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.config = config or AgentStatusConfig()
        self._snapshot = snapshot
        self._cpu_seconds = cpu_seconds
        self._monotonic = monotonic
        self.health.mode = f"every {self.config.interval_s} s"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        self.health.state = "running"
        last_cpu, last_wall = self._cpu_seconds(), self._monotonic()
        while not stop.is_set():
            status = await self._snapshot()
            cpu, wall = self._cpu_seconds(), self._monotonic()
            if wall > last_wall:
                status.cpu_percent = round(100.0 * (cpu - last_cpu) / (wall - last_wall), 2)
            last_cpu, last_wall = cpu, wall
            event = ctx.event(
                SOURCE_ID, category="host", type="info", action="agent_status", agent_status=status
            )
            await sink.emit([event])
            self.health.events += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.interval_s)
