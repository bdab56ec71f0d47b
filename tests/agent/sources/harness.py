"""What the source tests share: a sink that keeps what a durable one would store, a context,
a running source, and waiting for a condition with a deadline."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from agent.sources.base import Checkpoint, Source, SourceContext
from canhgac.v1 import events_pb2

CLOCK_NS = 1_795_350_000_000_000_000  # 2026-11-22, so "Nov 22" lines are this year


class CollectingSink:
    """Keeps the events, the size of each emit, and the latest checkpoint per key."""

    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []
        self.checkpoints: dict[str, str] = {}
        self.batch_sizes: list[int] = []

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        self.events.extend(events)
        self.batch_sizes.append(len(events))
        if checkpoint is not None:
            self.checkpoints[checkpoint.key] = checkpoint.value


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    """Polls `condition` (plain or async) until it holds, up to `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def holds() -> bool:
        result = condition()
        return await result if inspect.isawaitable(result) else result

    while not await holds():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in time{': ' + what if what else ''}")
        await asyncio.sleep(0.01)


def context(
    checkpoints: dict[str, str] | None = None,
    *,
    host: str = "web1",
    clock: Callable[[], int] = lambda: CLOCK_NS,
) -> SourceContext:
    return SourceContext(
        agent_id="agent-1", host=host, clock_ns=clock, checkpoints=checkpoints or {}
    )


@asynccontextmanager
async def running(
    source: Source, sink: CollectingSink, ctx: SourceContext | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """The source runs for the body of the `async with`; then it is stopped and awaited."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(ctx or context(), sink, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
