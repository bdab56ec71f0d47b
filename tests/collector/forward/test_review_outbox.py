"""Review findings on the outbox worker: one poison item must not take its batch with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from collector.forward.model import DeliveryError, Outgoing
from collector.forward.worker import ForwardWorker, WorkerSettings
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from tests.collector.forward.test_outbox import T0, alert

SETTINGS = WorkerSettings(batch_size=10, max_attempts=5, poll_interval_s=3600)


class RefusesOne:
    """Delivers in order like the national destination: an item the centre will never take
    fails the batch when it comes first, and ends it early otherwise."""

    name = "national"

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.batches: list[list[str]] = []

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        self.batches.append([o.item.item_id for o in batch])
        accepted: set[str] = set()
        for o in batch:
            if o.item.item_id == self.poison:
                if not accepted:
                    raise DeliveryError("http_4xx", "HTTP 422", permanent=True)
                break
            accepted.add(o.item.item_id)
        return accepted

    async def close(self) -> None:
        pass


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoreWorker]:
    s = SqliteStore(tmp_path / "c.db")
    s.migrate()
    worker = StoreWorker(s)
    yield worker
    worker.close()


async def test_a_poison_item_at_the_head_quarantines_only_itself(store: StoreWorker) -> None:
    store.store.insert_alerts([alert("a0"), alert("a1"), alert("a2")], outbox=["national"])
    dest = RefusesOne("a0")
    worker = ForwardWorker(dest, store, SETTINGS, clock_ns=lambda: T0, jitter=lambda: 1.0)
    await worker.run_once()
    states = {i.item_id: i.state for i in store.store.outbox_items()}
    assert states == {"a0": "quarantined", "a1": "delivered", "a2": "delivered"}


async def test_a_poison_item_behind_others_is_quarantined_alone_next_round(
    store: StoreWorker,
) -> None:
    store.store.insert_alerts([alert("a1"), alert("a2"), alert("a3")], outbox=["national"])
    dest = RefusesOne("a2")
    now = [T0]
    worker = ForwardWorker(dest, store, SETTINGS, clock_ns=lambda: now[0], jitter=lambda: 1.0)
    await worker.run_once()
    now[0] += 3600 * 10**9
    await worker.run_once()
    states = {i.item_id: i.state for i in store.store.outbox_items()}
    assert states == {"a1": "delivered", "a2": "quarantined", "a3": "delivered"}
