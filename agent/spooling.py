"""Async face of the spool for the agent's event loop, and the sink sources write into.

All spool calls run on one dedicated thread (SQLite writes block). The sink also decides when a
batch is worth closing: once `batch_max_events` are waiting, or the oldest waiting event is
`batch_max_delay_ms` old, `wait_ready` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from agent.sources.base import Checkpoint
from agent.spool import DropReport, SpoolBatch, SpoolStats, SqliteSpool
from canhgac.v1 import events_pb2

P = ParamSpec("P")
T = TypeVar("T")


class AsyncSpool:
    """The spool, awaited from the loop; also the EventSink every source writes into."""

    def __init__(
        self, spool: SqliteSpool, *, batch_max_events: int, batch_max_delay_ms: int
    ) -> None:
        self.spool = spool
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._max_events = batch_max_events
        self._delay = batch_max_delay_ms / 1000
        self._waiting = 0
        self._first_waiting: float | None = None
        self._changed = asyncio.Event()
        # The `seq` after which the spool was last found to hold nothing to send (no batch
        # assigned after it, no event unassigned), until something is written or acknowledged.
        # An idle shipper asks twice a second; without this each ask was two SQL statements on
        # the spool's thread (about 0.1% of a core on an idle host, issue 4's 1% budget).
        self._empty_after: int | None = None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        if not events and checkpoint is None:
            return
        await self._run(self.spool.append, events, checkpoint)
        self._empty_after = None
        if events:
            if self._first_waiting is None:
                self._first_waiting = asyncio.get_running_loop().time()
            self._waiting += len(events)
            self._changed.set()

    async def wait_ready(self, timeout: float) -> None:
        """Return when a batch should be closed, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = loop.time()
            if self._waiting >= self._max_events:
                return
            if self._first_waiting is not None and now - self._first_waiting >= self._delay:
                return
            if now >= deadline:
                return
            wake = deadline
            if self._first_waiting is not None:
                wake = min(wake, self._first_waiting + self._delay)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, wake - now))

    def _ready_now(self) -> bool:
        if self._waiting >= self._max_events:
            return True
        if self._first_waiting is None:
            return False
        return asyncio.get_running_loop().time() - self._first_waiting >= self._delay

    async def batch_after(self, seq: int, max_events: int, max_bytes: int) -> SpoolBatch | None:
        """The next batch to send after `seq`: an earlier-assigned one first, else a new one.

        New batches are only cut when the sink says one is ready (full or old enough), so the
        collector sees few large batches rather than many small ones.
        """
        if self._empty_after == seq and self._waiting == 0:
            return None  # nothing written or acknowledged since the spool was found empty
        assigned = await self._run(self.spool.assigned_after, seq)
        if assigned is not None:
            return assigned
        if not self._ready_now() and self._waiting > 0:
            return None
        batch = await self._run(self.spool.assign_batch, max_events, max_bytes)
        if batch is None:
            self._waiting, self._first_waiting = 0, None
            self._empty_after = seq
            return None
        self._waiting = max(0, self._waiting - len(batch.events))
        self._first_waiting = asyncio.get_running_loop().time() if self._waiting else None
        return batch

    async def ack(self, seq: int) -> int:
        self._empty_after = None
        return await self._run(self.spool.ack, seq)

    async def ack_through(self, seq: int) -> None:
        self._empty_after = None
        await self._run(self.spool.ack_through, seq)

    async def stats(self) -> SpoolStats:
        return await self._run(self.spool.stats)

    async def take_drop_report(self) -> DropReport | None:
        return await self._run(self.spool.take_drop_report)

    async def checkpoints(self) -> dict[str, str]:
        return await self._run(self.spool.checkpoints)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.spool.close()
