"""Group commit: batches from every agent stream stored together, one durable sync per round.

A durable commit costs one disk sync (milliseconds), whatever it holds. While one round is
being written, batches arriving from other streams queue up and go into the next round, so
under load each sync covers many batches and the sync cost per event falls; an idle
collector still commits a lone batch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from collector.storage.base import BatchToStore
from collector.storage.worker import StoreWorker


@dataclass
class _Pending:
    batch: BatchToStore
    done: asyncio.Future[bool]


@dataclass
class GroupCommitter:
    """`await store(batch)` returns once the batch is durably stored (True) or was a duplicate."""

    store: StoreWorker
    # Upper bound of events per transaction, so one round never holds the write lock for long.
    max_round_events: int = 20_000
    _pending: list[_Pending] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for p in self._pending:
            if not p.done.done():
                p.done.cancel()

    async def store_batch(self, batch: BatchToStore) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(batch, fut))
        self._wake.set()
        return await fut

    def queued(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group = self._take_round()
                try:
                    results = await self.store.run(
                        self.store.store.store_batches, [p.batch for p in group]
                    )
                except Exception as exc:  # noqa: BLE001  # each waiting stream gets the error
                    for p in group:
                        if not p.done.done():
                            p.done.set_exception(exc)
                    continue
                for p, stored in zip(group, results, strict=True):
                    if not p.done.done():
                        p.done.set_result(stored)

    def _take_round(self) -> list[_Pending]:
        taken, events = 0, 0
        for p in self._pending:
            if taken and events + len(p.batch.events) > self.max_round_events:
                break
            taken += 1
            events += len(p.batch.events)
        group, self._pending = self._pending[:taken], self._pending[taken:]
        return group
