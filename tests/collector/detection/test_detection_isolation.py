"""Detection in a child process: same alerts as in a thread, and a dead child is restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from canhgac.v1 import agent_pb2, events_pb2
from collector.bus.base import StoredBatch
from collector.detection.engine import DetectionEngine
from collector.detection.isolation import ProcessDetector, ThreadDetector, process_batch
from tests.e2e.harness import wait_for

RULES = [Path(__file__).resolve().parents[3] / "rules"]
T0 = 1_763_800_000_000_000_000


def failed_logins(n: int, ip: str = "203.0.113.7") -> list[events_pb2.Event]:
    return [
        events_pb2.Event(
            id=f"e{i}",
            time_ns=T0 + i * 1_000_000_000,
            agent_id="claimed-by-event",
            host="web",
            category="authentication",
            type="start",
            action="ssh_login",
            outcome=events_pb2.OUTCOME_FAILURE,
            auth=events_pb2.AuthEvent(user="root", source_ip=ip, method="password"),
        )
        for i in range(n)
    ]


def stored(events: list[events_pb2.Event], seq: int = 1) -> StoredBatch:
    raw = agent_pb2.AgentMessage(
        batch=agent_pb2.EventBatch(agent_id="web-01", seq=seq, events=events)
    ).SerializeToString()
    return StoredBatch("web-01", seq, events, raw)


def test_child_process_raises_the_same_alert_as_a_thread() -> None:
    engine = DetectionEngine(clock_ns=lambda: T0)
    engine.load(RULES)
    in_thread = process_batch(ThreadDetector(engine), stored(failed_logins(5)))
    restarts: list[int] = []
    child = ProcessDetector(RULES, lambda: restarts.append(1))
    try:
        in_child = process_batch(child, stored(failed_logins(5)))
    finally:
        child.close()
    assert len(in_thread) == len(in_child) == 1
    a, b = in_thread[0], in_child[0]
    assert (a.rule_id, dict(a.group), a.event_count) == (b.rule_id, dict(b.group), b.event_count)
    # The stream's identity wins over what the events claim, in the child too.
    assert b.agent_id == "web-01"
    assert restarts == []


def test_a_dead_child_is_restarted_and_counted() -> None:
    restarts: list[int] = []
    child = ProcessDetector(RULES, lambda: restarts.append(1))
    try:
        assert process_batch(child, stored(failed_logins(2), 1)) == []
        pool_processes = list(child._pool._processes.values())  # test reaches in
        for proc in pool_processes:
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
        # The next batch meets the dead pool, restarts it and is processed all the same.
        assert len(process_batch(child, stored(failed_logins(5, "198.51.100.1"), 2))) == 1
        assert restarts == [1]
    finally:
        child.close()


def test_batches_in_flight_when_the_child_dies_are_all_run_again_after_one_restart() -> None:
    restarts: list[int] = []
    child = ProcessDetector(RULES, lambda: restarts.append(1))
    try:
        for proc in list(child._pool._processes.values()):  # test reaches in
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
        batches = [stored(failed_logins(1, "198.51.100.9"), seq) for seq in (1, 2, 3)]
        batches.append(stored(failed_logins(5, "198.51.100.1"), 4))
        futures = [child.submit(b) for b in batches]
        results = []
        for batch, fut in zip(batches, futures, strict=True):
            try:
                results.append(fut.result(timeout=60))
            except Exception as exc:  # noqa: BLE001  # what the worker does: hand it to retry
                results.append(child.retry(batch, exc))
        assert [len(r) for r in results] == [0, 0, 0, 1]
        assert restarts == [1]
    finally:
        child.close()


def test_the_child_ends_when_the_collector_is_killed(tmp_path: Path) -> None:
    # A stand-in collector: starts a ProcessDetector, writes its child's pid, waits to be killed.
    script = tmp_path / "parent.py"
    pid_file = tmp_path / "child.pid"
    script.write_text(
        "import os, signal\n"
        "from pathlib import Path\n"
        "from collector.detection.isolation import ProcessDetector\n"
        "if __name__ == '__main__':  # the spawned child imports this module again\n"
        f"    detector = ProcessDetector([Path({str(RULES[0])!r})], lambda: None)\n"
        "    child = detector._pool.submit(os.getpid).result()\n"
        f"    Path({str(pid_file)!r}).write_text(str(child))\n"
        "    signal.pause()  # until the test kills it\n"
    )
    root = Path(__file__).resolve().parents[3]
    parent = subprocess.Popen(
        [sys.executable, str(script)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
    )
    try:
        wait_for(
            lambda: pid_file.exists() or parent.poll() is not None,
            timeout=60,
            what="the detection child to start",
        )
        assert parent.poll() is None, "the stand-in collector failed"
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not _alive(child), timeout=30, what="the orphaned child to end")
    finally:
        parent.kill()
        parent.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing
