"""The agent_status source writes the agent's status into the event stream periodically."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from agent.sources.agentstatus.source import AgentStatusConfig, AgentStatusSource
from agent.sources.base import Checkpoint, SourceContext
from canhgac.v1 import events_pb2


class QueueSink:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[events_pb2.Event] = asyncio.Queue()

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        for e in events:
            self.queue.put_nowait(e)


async def test_emits_at_start_then_every_interval_with_its_own_cpu_figure() -> None:
    # Readings at start, at the first event, at the second (then unchanged): half a
    # CPU-second over 100 s between the first and the second event is 0.5 %.
    cpu = iter([10.0, 10.0, 10.5])
    wall = iter([1000.0, 1000.0, 1100.0])
    snapshots = 0

    async def snapshot() -> events_pb2.AgentStatus:
        nonlocal snapshots
        snapshots += 1
        status = events_pb2.AgentStatus(rss_bytes=42 * 1024 * 1024, spool_events=7)
        status.drops.add(source="authlog", reason="rate_limit", count=3)
        return status

    src = AgentStatusSource(
        # Below the configurable minimum on purpose (model_construct skips validation), so the
        # second event comes at once.
        AgentStatusConfig.model_construct(interval_s=0),
        snapshot=snapshot,
        cpu_seconds=lambda: next(cpu, 10.5),
        monotonic=lambda: next(wall, 1100.0),
    )
    ctx = SourceContext(agent_id="a1", host="web-01", clock_ns=lambda: 5_000_000_000)
    sink, stop = QueueSink(), asyncio.Event()
    task = asyncio.create_task(src.run(ctx, sink, stop))
    first = await asyncio.wait_for(sink.queue.get(), 10)
    assert first.action == "agent_status"
    assert first.category == "host"
    assert first.agent_id == "a1"
    assert first.host == "web-01"
    assert first.time_ns == 5_000_000_000
    assert first.agent_status.rss_bytes == 42 * 1024 * 1024
    assert first.agent_status.drops[0].reason == "rate_limit"
    assert first.agent_status.cpu_percent == 0.0
    assert src.health.state == "running"
    second = await asyncio.wait_for(sink.queue.get(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert second.agent_status.cpu_percent == 0.5
    assert snapshots >= 2
    assert src.health.events >= 2
