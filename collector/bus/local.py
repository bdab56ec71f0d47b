"""In-process bus for the embedded deployment: a bounded asyncio queue."""

from __future__ import annotations

import asyncio

from collector.bus.base import StoredBatch


class LocalBus:
    """Bounded FIFO on the collector's event loop; `publish` waits when full."""

    def __init__(self, capacity: int) -> None:
        self._queue: asyncio.Queue[StoredBatch] = asyncio.Queue(maxsize=capacity)

    async def publish(self, batch: StoredBatch) -> None:
        await self._queue.put(batch)

    async def next(self) -> StoredBatch:
        return await self._queue.get()

    def depth(self) -> int:
        return self._queue.qsize()
