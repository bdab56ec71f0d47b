"""Forward workers on a real SQLite store: delivery, backoff, quarantine, wake-up, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.forward.model import DeliveryError, Outgoing
from collector.forward.worker import (
    NS,
    ForwardWorker,
    ForwardWorkers,
    WorkerSettings,
    backoff_ns,
)
from collector.metrics import ForwardMetrics
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from tests.collector.forward.test_outbox import T0, alert

SETTINGS = WorkerSettings(
    batch_size=10, max_attempts=3, backoff_base_s=1, backoff_cap_s=4, poll_interval_s=3600
)


class Recorder:
    """A destination that answers from a script: an exception, a set of accepted ids, or
    (when the script is empty) everything accepted."""

    name = "national"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.script: list[BaseException | set[str]] = []
        self.closed = False
        self.sent = asyncio.Event()

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        self.batches.append([o.item.item_id for o in batch])
        self.sent.set()
        assert all(o.alert is not None or o.incident is not None for o in batch)
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return {o.item.item_id for o in batch}

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoreWorker]:
    s = SqliteStore(tmp_path / "c.db")
    s.migrate()
    worker = StoreWorker(s)
    yield worker
    worker.close()


def make(
    store: StoreWorker, dest: Recorder, clock: Clock, metrics: ForwardMetrics | None = None
) -> ForwardWorker:
    return ForwardWorker(dest, store, SETTINGS, metrics, clock_ns=clock, jitter=lambda: 1.0)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"destination": "national", **labels})


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    waits = [backoff_ns(n, SETTINGS, 1.0) / NS for n in range(1, 6)]
    assert waits == [1, 2, 4, 4, 4]
    assert backoff_ns(2, SETTINGS, 0.5) / NS == 1
    assert backoff_ns(10_000, SETTINGS, 1.0) / NS == 4  # no overflow


async def test_due_items_are_delivered_and_counted(store: StoreWorker) -> None:
    registry = CollectorRegistry()
    metrics = ForwardMetrics.create(registry)
    store.store.insert_alerts([alert("a1"), alert("a2")], outbox=["national", "soc"])
    dest, clock = Recorder(), Clock()
    w = make(store, dest, clock, metrics)
    await w.refresh_metrics()
    assert sample(registry, "canhgac_collector_forward_backlog") == 2
    clock.now = T0 + 5 * NS
    assert sample(registry, "canhgac_collector_forward_last_success_timestamp_seconds") == 0
    assert await w.run_once() == 2
    assert dest.batches == [["a1", "a2"]]
    assert await w.run_once() == 0
    await w.refresh_metrics()
    assert sample(registry, "canhgac_collector_forward_delivered_total") == 2
    assert sample(registry, "canhgac_collector_forward_backlog") == 0
    assert sample(registry, "canhgac_collector_forward_last_success_timestamp_seconds") == (
        (T0 + 5 * NS) / NS
    )
    # The other destination's queue is its own.
    assert len(store.store.due_items("soc", T0 * 2, 10)) == 2


async def test_failures_back_off_then_quarantine(store: StoreWorker) -> None:
    registry = CollectorRegistry()
    metrics = ForwardMetrics.create(registry)
    store.store.insert_alerts([alert("a1")], outbox=["national"])
    dest, clock = Recorder(), Clock()
    dest.script = [DeliveryError("http_5xx", "HTTP 503")] * 3
    w = make(store, dest, clock, metrics)
    assert await w.run_once() == 1
    (item,) = store.store.outbox_items()
    assert (item.attempts, item.next_attempt_ns) == (1, T0 + 1 * NS)
    assert item.last_error == "http_5xx: HTTP 503"
    assert await w.run_once() == 0  # not due yet
    clock.now = item.next_attempt_ns
    await w.run_once()
    (item,) = store.store.outbox_items()
    assert (item.attempts, item.next_attempt_ns, item.state) == (2, clock.now + 2 * NS, "pending")
    clock.now = item.next_attempt_ns
    await w.run_once()
    (item,) = store.store.outbox_items()
    assert (item.attempts, item.state) == (3, "quarantined")
    await w.refresh_metrics()
    assert sample(registry, "canhgac_collector_forward_failures_total", reason="http_5xx") == 3
    assert sample(registry, "canhgac_collector_forward_quarantined") == 1
    # An operator's retry puts it back, and it goes through.
    assert store.store.retry_quarantined("national", "alert", "a1", clock.now)
    assert await w.run_once() == 1
    assert store.store.outbox_items()[0].state == "delivered"


async def test_a_permanent_error_quarantines_at_once(store: StoreWorker) -> None:
    store.store.insert_alerts([alert("a1")], outbox=["national"])
    dest = Recorder()
    dest.script = [DeliveryError("http_4xx", "HTTP 422", permanent=True)]
    await make(store, dest, Clock()).run_once()
    (item,) = store.store.outbox_items()
    assert (item.state, item.attempts) == ("quarantined", 1)


async def test_items_not_accepted_in_a_batch_are_retried(store: StoreWorker) -> None:
    store.store.insert_alerts([alert("a1"), alert("a2")], outbox=["national"])
    dest, clock = Recorder(), Clock()
    dest.script = [{"a1"}]
    w = make(store, dest, clock)
    await w.run_once()
    states = {i.item_id: (i.state, i.last_error) for i in store.store.outbox_items()}
    assert states == {
        "a1": ("delivered", ""),
        "a2": ("pending", "partial: not accepted in this batch"),
    }
    clock.now += 10 * NS
    await w.run_once()
    assert dest.batches == [["a1", "a2"], ["a2"]]


async def test_an_item_whose_record_is_gone_is_quarantined_without_sending(
    store: StoreWorker,
) -> None:
    store.store.enqueue(["national"], "incident", ["INC-404"], at_ns=T0)
    dest = Recorder()
    assert await make(store, dest, Clock()).run_once() == 1
    assert dest.batches == []
    (item,) = store.store.outbox_items()
    assert (item.state, item.last_error) == ("quarantined", "missing: no longer stored")


async def test_a_destination_bug_is_a_retryable_failure(store: StoreWorker) -> None:
    store.store.insert_alerts([alert("a1")], outbox=["national"])
    dest = Recorder()
    dest.script = [RuntimeError("boom")]
    await make(store, dest, Clock()).run_once()
    (item,) = store.store.outbox_items()
    assert (item.state, item.attempts) == ("pending", 1)
    assert item.last_error.startswith("error: RuntimeError")


async def test_state_survives_a_new_worker_on_the_same_database(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "c.db")
    first.migrate()
    first.insert_alerts([alert("a1")], outbox=["national"])
    sw = StoreWorker(first)
    dest, clock = Recorder(), Clock()
    dest.script = [DeliveryError("timeout", "slow")]
    await make(sw, dest, clock).run_once()
    sw.close()
    again = StoreWorker(SqliteStore(tmp_path / "c.db"))
    clock.now += 10 * NS
    await make(again, Recorder(), clock).run_once()
    (item,) = again.store.outbox_items()
    assert (item.state, item.attempts) == ("delivered", 1)
    again.close()


async def test_notify_wakes_the_workers_without_waiting_for_the_poll(store: StoreWorker) -> None:
    dest = Recorder()
    workers = ForwardWorkers([make(store, dest, Clock())])
    workers.start()
    await asyncio.sleep(0)  # let the worker find its queue empty and wait
    store.store.insert_alerts([alert("a1")], outbox=workers.names)
    dest.sent.clear()
    workers.notify()
    # The poll interval is an hour: only the wake-up can deliver within the test's timeout.
    await asyncio.wait_for(dest.sent.wait(), timeout=30)
    await workers.stop()
    assert dest.closed
    assert ["a1"] in dest.batches
