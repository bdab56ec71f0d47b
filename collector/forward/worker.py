"""Forward workers: one asyncio task per destination, on the collector's event loop.

Each worker takes the due items of its destination from the outbox (in batches, oldest first),
loads the alert or incident through the StoreWorker, hands them to the destination and records
the outcome: delivered, or failed with the next attempt pushed back exponentially (with
jitter, so a recovering centre is not hit by every collector at once), or quarantined after
max_attempts or a permanent error. All state is in the database: a restarted collector carries
on where the last one stopped. An item may be sent twice (a crash between the send and the
mark), never lost; the receiver deduplicates on the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.forward.model import (
    DeliveryError,
    Destination,
    DestinationHealth,
    ItemKind,
    OutboxItem,
    Outgoing,
)
from collector.metrics import ForwardMetrics
from collector.storage.base import Store
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.forward")

NS = 1_000_000_000


@dataclass(frozen=True)
class WorkerSettings:
    batch_size: int = 50
    max_attempts: int = 20
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    poll_interval_s: float = 5.0


def backoff_ns(attempts: int, settings: WorkerSettings, jitter: float) -> int:
    """Wait before the next attempt after `attempts` failures (>= 1): base doubling per
    failure, capped, then scaled by `jitter` in [0.5, 1] so retries spread out."""
    exponent = min(max(attempts - 1, 0), 62)
    delay = min(settings.backoff_cap_s, settings.backoff_base_s * (2.0**exponent))
    return int(delay * jitter * NS)


def _load(store: Store, items: Sequence[OutboxItem]) -> list[Outgoing]:
    """The alert or incident of each item (neither, when it is no longer stored)."""
    out = []
    for item in items:
        if item.kind == "alert":
            stored = store.get_alert(item.item_id)
            out.append(Outgoing(item, alert=stored.alert if stored else None))
        else:
            out.append(Outgoing(item, incident=store.get_incident(item.item_id)))
    return out


class ForwardWorker:
    """Delivers one destination's queue; see the module docstring."""

    def __init__(
        self,
        destination: Destination,
        store: StoreWorker,
        settings: WorkerSettings,
        metrics: ForwardMetrics | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),  # not security
    ) -> None:
        self.destination = destination
        self.name = destination.name
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._clock = clock_ns
        self._jitter = jitter
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Deliver until cancelled. A full batch is followed at once by the next; otherwise
        the worker sleeps until woken (new items) or the poll interval passes."""
        while True:
            # Cleared before looking, so items queued while a batch is out wake the next look.
            self.wake.clear()
            try:
                handled = await self.run_once()
                await self.refresh_metrics()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly unavailable: try again later
                log.exception("forward worker failed", extra={"fields": {"destination": self.name}})
                handled = 0
            if handled >= self._settings.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.poll_interval_s)

    async def run_once(self) -> int:
        """Deliver one batch of due items; returns how many items it handled."""
        s = self._store.store
        items = await self._store.run(
            s.due_items, self.name, self._clock(), self._settings.batch_size
        )
        if not items:
            return 0
        batch = await self._store.run(_load, s, items)
        missing = [o.item for o in batch if o.alert is None and o.incident is None]
        if missing:
            error = DeliveryError("missing", "no longer stored", permanent=True)
            await self._failed(missing, error)
        present = [o for o in batch if o.alert is not None or o.incident is not None]
        if present:
            await self._deliver(present)
        return len(items)

    async def _deliver(self, present: Sequence[Outgoing]) -> None:
        s = self._store.store
        try:
            accepted = await self.destination.send(present)
        except DeliveryError as exc:
            if exc.permanent and len(present) > 1:
                # Which item the destination will never take is unknown: send each alone so
                # that one poison item is quarantined without the rest of its batch.
                for one in present:
                    await self._deliver([one])
                return
            await self._failed([o.item for o in present], exc)
            return
        except Exception as exc:  # a destination bug must not stop the queue
            log.exception("destination failed", extra={"fields": {"destination": self.name}})
            await self._failed([o.item for o in present], DeliveryError("error", repr(exc)))
            return
        done = [o.item for o in present if o.item.item_id in accepted]
        rest = [o.item for o in present if o.item.item_id not in accepted]
        now = self._clock()
        for kind, ids in _by_kind(done).items():
            await self._store.run(s.mark_delivered, self.name, kind, ids, now)
        if self._metrics is not None and done:
            self._metrics.delivered.labels(destination=self.name).inc(len(done))
        if rest:
            await self._failed(rest, DeliveryError("partial", "not accepted in this batch"))

    async def _failed(self, items: Sequence[OutboxItem], exc: DeliveryError) -> None:
        s = self._store.store
        now = self._clock()
        error = f"{exc.reason}: {exc}"
        # Items of one batch fail together; each waits by its own count of attempts.
        groups: dict[tuple[ItemKind, int], list[str]] = {}
        for item in items:
            groups.setdefault((item.kind, item.attempts + 1), []).append(item.item_id)
        for (kind, attempts), ids in groups.items():
            wait = backoff_ns(attempts, self._settings, self._jitter())
            quarantined = await self._store.run(
                s.mark_failed,
                self.name,
                kind,
                ids,
                error=error,
                next_attempt_ns=now + wait,
                max_attempts=self._settings.max_attempts,
                permanent=exc.permanent,
            )
            for item_id in quarantined:
                log.warning(
                    "forward item quarantined",
                    extra={
                        "fields": {
                            "destination": self.name,
                            "kind": kind,
                            "id": item_id,
                            "error": error,
                        }
                    },
                )
        if self._metrics is not None:
            self._metrics.failures.labels(destination=self.name, reason=exc.reason).inc(len(items))
        log.info(
            "forward attempt failed",
            extra={"fields": {"destination": self.name, "items": len(items), "error": error}},
        )

    async def refresh_metrics(self) -> DestinationHealth:
        health = await self._store.run(self._store.store.outbox_health, self.name)
        if self._metrics is not None:
            m, d = self._metrics, self.name
            m.backlog.labels(destination=d).set(health.backlog)
            m.quarantined.labels(destination=d).set(health.quarantined)
            age = (self._clock() - health.oldest_pending_ns) / NS if health.oldest_pending_ns else 0
            m.oldest_pending_seconds.labels(destination=d).set(max(age, 0.0))
            m.last_success.labels(destination=d).set(health.last_success_ns / NS)
        return health


def _by_kind(items: Sequence[OutboxItem]) -> dict[ItemKind, list[str]]:
    grouped: dict[ItemKind, list[str]] = {}
    for item in items:
        grouped.setdefault(item.kind, []).append(item.item_id)
    return grouped


class ForwardWorkers:
    """Every destination's worker, started and stopped together by the collector."""

    def __init__(self, workers: Sequence[ForwardWorker]) -> None:
        self.workers = list(workers)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workers]

    def notify(self) -> None:
        """New items were queued: wake every worker now (called on the event loop)."""
        for w in self.workers:
            w.wake.set()

    def start(self) -> None:
        for w in self.workers:
            self._tasks.append(asyncio.create_task(w.run(), name=f"forward-{w.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for w in self.workers:
            try:
                await w.destination.close()
            except Exception:  # stopping anyway
                log.exception("closing destination", extra={"fields": {"destination": w.name}})
