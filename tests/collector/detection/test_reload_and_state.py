"""Rule reloads between batches and correlation state kept on disk, in a thread and in the child
process, and through the detection worker: no event lost or evaluated twice across a reload."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from canhgac.v1 import agent_pb2, events_pb2
from collector.bus.base import StoredBatch
from collector.bus.local import LocalBus
from collector.detection import control
from collector.detection.isolation import BatchDetector, ProcessDetector, ThreadDetector
from collector.detection.worker import DetectionSettings, DetectionWorker
from collector.metrics import CollectorMetrics
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker

RULES = Path(__file__).resolve().parents[3] / "rules" / "linux" / "auth"
GUESSING = "fa6ca2bf-9cda-4489-9e0f-85474f98762d"  # ssh_password_guessing.yml
T0 = 1_795_350_000_000_000_000
BROKEN = "title: broken\ndetection: [this is not a detection\n"


def failures(n: int, start_s: int = 0, ip: str = "203.0.113.7") -> list[events_pb2.Event]:
    return [
        events_pb2.Event(
            id=f"e{start_s + i}",
            time_ns=T0 + (start_s + i) * 1_000_000_000,
            agent_id="web-01",
            host="web",
            category="authentication",
            type="start",
            action="ssh_login",
            outcome=events_pb2.OUTCOME_FAILURE,
            auth=events_pb2.AuthEvent(user="root", source_ip=ip, method="password"),
        )
        for i in range(n)
    ]


def stored(events: list[events_pb2.Event], seq: int) -> StoredBatch:
    raw = agent_pb2.AgentMessage(
        batch=agent_pb2.EventBatch(agent_id="web-01", seq=seq, events=events)
    ).SerializeToString()
    return StoredBatch("web-01", seq, events, raw)


def write_rules(tmp_path: Path) -> Path:
    """A rule directory holding the SSH password-guessing correlation."""
    out = tmp_path / "rules"
    out.mkdir()
    shutil.copy(RULES / "ssh_password_guessing.yml", out)
    return out


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return write_rules(tmp_path)


def thread_detector(rules: Path) -> ThreadDetector:
    engine, errors = control.build_engine([rules])
    assert errors == []
    return ThreadDetector(engine)


def make(kind: str, rules: Path, state: Path | None = None) -> BatchDetector:
    if kind == "thread":
        detector = thread_detector(rules)
        if state is not None:
            control.load_state(detector.engine, state)
        return detector
    return ProcessDetector([rules], lambda: None, state)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_reload_keeps_windows_and_a_broken_file_disables_only_itself(
    kind: str, rules: Path
) -> None:
    detector = make(kind, rules)
    try:
        assert detector.submit(stored(failures(4), 1)).result(timeout=60) == []
        (rules / "broken.yml").write_text(BROKEN)
        summary = detector.reload([rules]).result(timeout=60)
        assert summary.loaded == 2  # the two rules of ssh_password_guessing.yml
        assert len(summary.errors) == 1
        assert "broken.yml" in summary.errors[0]
        assert summary.state_kept == [GUESSING]
        # The fifth failure completes the window begun before the reload.
        alerts = detector.submit(stored(failures(1, start_s=4), 2)).result(timeout=60)
        assert [a.rule_id for a in alerts] == [GUESSING]
        stats = detector.stats().result(timeout=60)
        assert stats.rules == 2
        assert set(stats.correlations) == {GUESSING}
    finally:
        detector.close()


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_state_saved_then_restored_by_a_new_detector(
    kind: str, rules: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "detection-state.json"
    first = make(kind, rules)
    try:
        first.submit(stored(failures(4), 1)).result(timeout=60)
        assert first.save_state(state).result(timeout=60) == 1
    finally:
        first.close()
    assert not (tmp_path / "state" / "detection-state.json.tmp").exists()
    second = make(kind, rules, state)
    try:
        alerts = second.submit(stored(failures(1, start_s=4), 2)).result(timeout=60)
        assert [a.rule_id for a in alerts] == [GUESSING]
    finally:
        second.close()


def test_unreadable_state_is_reported_and_the_windows_start_empty(tmp_path: Path) -> None:
    state = tmp_path / "detection-state.json"
    state.write_text("{not json")
    engine, _ = control.build_engine([RULES])
    assert control.load_state(engine, state)["error"]
    assert control.load_state(engine, tmp_path / "absent.json")["error"] == ""


async def test_worker_reloads_between_batches_and_saves_state_on_drain(
    rules: Path, tmp_path: Path
) -> None:
    metrics = CollectorMetrics.create(CollectorRegistry())
    store = StoreWorker(SqliteStore(tmp_path / "c.db"))
    await store.run(store.store.migrate)
    bus = LocalBus(64)
    state = tmp_path / "detection-state.json"
    worker = DetectionWorker(
        bus,
        thread_detector(rules),
        store,
        metrics,
        "test",
        settings=DetectionSettings([rules], state, 3600),
    )
    task = asyncio.create_task(worker.run())
    try:
        # Four failures before the reload, one after: exactly one alert, nothing lost.
        for seq in range(1, 5):
            await bus.publish(stored(failures(1, start_s=seq - 1), seq))
        (rules / "broken.yml").write_text(BROKEN)
        worker.request_reload()
        await bus.publish(stored(failures(1, start_s=4), 5))
        assert await worker.drain(timeout=30)
        alerts = await store.run(store.store.recent_alerts, 10)
        assert [a.alert.rule_id for a in alerts] == [GUESSING]
        assert metrics.rule_reloads.labels(outcome="with_errors")._value.get() == 1
        assert metrics.rule_errors._value.get() == 1
        assert state.exists()
        # The reload is in the audit chain, with what loaded and what broke.
        (record,) = await store.run(store.store.audit_records, action_prefix="rules.")
        assert (record.action, record.actor) == ("rules.reload", "collector:test")
        assert record.detail["broken"] == 1
        assert record.detail["loaded"] == metrics.rules_loaded._value.get()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        worker.close()
        store.close()
