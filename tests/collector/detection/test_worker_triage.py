"""The detection worker applies operators' suppressions to new alerts and hands the stored
alerts, with their final status, to the live listener."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.bus.local import LocalBus
from collector.detection.worker import SEVERITY_NAMES, DetectionWorker
from collector.metrics import CollectorMetrics
from collector.storage.base import StoredAlert
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from tests.collector.detection.test_reload_and_state import (
    GUESSING,
    failures,
    stored,
    thread_detector,
    write_rules,
)

HOUR = 3600 * 10**9


async def test_a_suppressed_rule_and_host_stores_the_next_alert_as_suppressed(
    tmp_path: Path,
) -> None:
    rules = write_rules(tmp_path)
    metrics = CollectorMetrics.create(CollectorRegistry())
    store = StoreWorker(SqliteStore(tmp_path / "c.db"))
    await store.run(store.store.migrate)
    bus = LocalBus(64)
    seen: list[list[StoredAlert]] = []
    worker = DetectionWorker(
        bus, thread_detector(rules), store, metrics, "test", on_stored=seen.append
    )
    task = asyncio.create_task(worker.run())
    counted = metrics.alerts_stored_suppressed.labels(
        rule_id=GUESSING, reason="operator_suppression"
    )
    try:
        await bus.publish(stored(failures(5), 1))
        assert await worker.drain(timeout=30)
        (first,) = await store.run(store.store.recent_alerts, 10)
        assert first.status == "open"
        assert [[a.alert.id for a in batch] for batch in seen] == [[first.alert.id]]
        assert seen[0][0].status == "open"
        assert counted._value.get() == 0
        # Alerts are counted by rule, severity and system (this host is in none).
        raised = metrics.registry.get_sample_value(
            "canhgac_collector_alerts_total",
            {
                "rule_id": GUESSING,
                "severity": SEVERITY_NAMES[first.alert.severity],
                "system": "unassigned",
            },
        )
        assert raised == 1

        # The worker judges suppressions by the wall clock, not the events' time.
        now = time.time_ns()
        await store.run(
            store.store.triage_alert,
            first.alert.id,
            "suppress",
            actor="minh",
            at_ns=now,
            until_ns=now + 24 * HOUR,
        )

        await bus.publish(stored(failures(5, start_s=100, ip="198.51.100.9"), 2))
        assert await worker.drain(timeout=30)
        alerts = await store.run(store.store.recent_alerts, 10)
        assert [a.status for a in alerts] == ["suppressed", "suppressed"]
        assert alerts[1].alert.id != first.alert.id
        assert [a.status for a in seen[1]] == ["suppressed"]
        assert counted._value.get() == 1
        history = await store.run(store.store.triage_history, alerts[1].alert.id)
        assert [h.actor.startswith("suppression:") for h in history] == [True]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        worker.close()
        store.close()
