"""Where the detection engine runs: on a thread of the collector, or in a child process.

Both are BatchDetectors for DetectionWorker: `submit(batch) -> Future[alerts]`. In a child
process rule evaluation does not hold the collector's interpreter lock, which ingest and storage
need; the child owns the engine and its correlation state, fed batches in bus order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, TypeVar

from canhgac.v1 import agent_pb2, alert_pb2
from collector.bus.base import StoredBatch
from collector.detection import control
from collector.detection.control import EngineStats, ReloadSummary
from collector.detection.engine import DetectionEngine

log = logging.getLogger("canhgac.collector.detection")
T = TypeVar("T")


class BatchDetector(Protocol):
    """Runs rules over stored batches, in the order they are submitted.

    `submit` hands a batch over and returns at once; several may be in flight, so the
    detector works on one batch while the collector hands it the next. `retry` is called
    (blocking, off the event loop) when a submitted batch's future failed: it runs that batch
    again if the failure was one the detector recovers from, and otherwise raises it.
    """

    def submit(self, batch: StoredBatch) -> Future[list[alert_pb2.Alert]]: ...

    def retry(self, batch: StoredBatch, error: BaseException) -> list[alert_pb2.Alert]: ...

    def reload(self, rule_paths: Sequence[Path]) -> Future[ReloadSummary]:
        """Load the rules anew, after every batch submitted so far and before the next."""
        ...

    def save_state(self, path: Path) -> Future[int]:
        """Write the correlation state to `path`, in order with the batches."""
        ...

    def stats(self) -> Future[EngineStats]: ...

    def close(self) -> None: ...


def process_batch(detector: BatchDetector, batch: StoredBatch) -> list[alert_pb2.Alert]:
    """One batch, blocking: submit, wait, and retry once if the detector can recover."""
    try:
        return detector.submit(batch).result()
    except Exception as exc:  # noqa: BLE001  # retry decides which errors it recovers from
        return detector.retry(batch, exc)


class ThreadDetector:
    """The engine in the collector process, on one thread of its own (batches in order)."""

    def __init__(self, engine: DetectionEngine, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.engine = engine
        self._clock_ns = clock_ns
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")

    def submit(self, batch: StoredBatch) -> Future[list[alert_pb2.Alert]]:
        return self._executor.submit(lambda: self.engine.process(batch.events))

    def retry(self, batch: StoredBatch, error: BaseException) -> list[alert_pb2.Alert]:
        raise error

    def reload(self, rule_paths: Sequence[Path]) -> Future[ReloadSummary]:
        def swap() -> ReloadSummary:
            self.engine, summary = control.reload(self.engine, rule_paths, self._clock_ns)
            return summary

        return self._executor.submit(swap)

    def save_state(self, path: Path) -> Future[int]:
        return self._executor.submit(control.save_state, self.engine, path)

    def stats(self) -> Future[EngineStats]:
        return self._executor.submit(lambda: control.stats(self.engine))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# The child process's engine, set by _child_init.
_ENGINE: DetectionEngine | None = None


def _watch_parent(parent_pid: int) -> None:
    """Ends the child when its collector is gone (killed with SIGKILL, say).

    The pool's call queue gives the child no end-of-file when the parent dies (the child holds
    both ends of the pipe), so without this an orphaned child would wait for work forever,
    holding its memory. The thread waits on a pidfd of the parent, which becomes readable when
    the parent exits; the pid is checked again after opening it, so a parent that died (and
    whose pid was reused) before the open is seen too.
    """
    try:
        pidfd = os.pidfd_open(parent_pid)
    except OSError:  # the parent is gone already (ESRCH), or a kernel before 5.3
        pidfd = None
    if pidfd is not None and os.getppid() == parent_pid:
        select.select([pidfd], [], [])  # readable once the parent has exited
    # A kernel without pidfd (an old collector host) leaves only looking: the parent pid
    # changes when the child is reparented.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)  # no pidfd: nothing to wait on, only to look again
    os._exit(0)


# How often a child without pidfd looks for its parent (see _watch_parent).
PARENT_POLL_S = 1.0


def _child_init(
    rule_paths: Sequence[str], state_path: str | None = None, parent_pid: int | None = None
) -> None:
    global _ENGINE  # one engine per child process, by design
    if parent_pid is not None:
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
        ).start()
    # Load problems were already logged by the parent's own load of the same files.
    logging.disable(logging.CRITICAL)
    engine, _ = control.build_engine([Path(p) for p in rule_paths])
    if state_path is not None:
        # A child restarted after a crash takes up the windows last saved.
        control.load_state(engine, Path(state_path))
    _ENGINE = engine


def _child_reload(rule_paths: Sequence[str]) -> ReloadSummary:
    global _ENGINE  # replaced between two batches, by design
    assert _ENGINE is not None, "initializer did not run"
    _ENGINE, summary = control.reload(_ENGINE, [Path(p) for p in rule_paths])
    return summary


def _child_save_state(path: str) -> int:
    assert _ENGINE is not None, "initializer did not run"
    return control.save_state(_ENGINE, Path(path))


def _child_stats() -> EngineStats:
    assert _ENGINE is not None, "initializer did not run"
    return control.stats(_ENGINE)


def _child_ready() -> bool:
    return _ENGINE is not None


def _child_process(agent_id: str, raw: bytes) -> list[bytes]:
    assert _ENGINE is not None, "initializer did not run"
    msg = agent_pb2.AgentMessage.FromString(raw)
    events = msg.batch.events
    for ev in events:
        ev.agent_id = agent_id  # the authenticated stream's identity, as ingest stored it
    return [a.SerializeToString() for a in _ENGINE.process(events)]


class ProcessDetector:
    """The engine in one child process; restarted (and the failure counted) if it dies.

    The child takes batches in submission order (one worker, FIFO). A restart loses the
    correlation state held in the child (as a collector restart does); every batch that was in
    flight when the child died fails with BrokenProcessPool and is run again by `retry` in the
    new child.
    """

    def __init__(
        self,
        rule_paths: Sequence[Path],
        on_restart: Callable[[], None],
        state_path: Path | None = None,
    ) -> None:
        self._paths = [str(p) for p in rule_paths]
        self._on_restart = on_restart
        self._state_path = None if state_path is None else str(state_path)
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the collector has gRPC threads, which fork does not copy safely.
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(self._paths, self._state_path, os.getpid()),
        )
        # Start the child and load its rules now, not on the first batch (that takes about a
        # second, during which batches would queue up on the bus).
        pool.submit(_child_ready).result()
        return pool

    def submit(self, batch: StoredBatch) -> Future[list[alert_pb2.Alert]]:
        out: Future[list[alert_pb2.Alert]] = Future()
        try:
            child = self._pool.submit(_child_process, batch.agent_id, _raw(batch))
        except BrokenProcessPool as exc:
            out.set_exception(exc)
            return out

        def done(f: Future[list[bytes]]) -> None:
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
            else:
                out.set_result([alert_pb2.Alert.FromString(b) for b in f.result()])

        child.add_done_callback(done)
        return out

    def retry(self, batch: StoredBatch, error: BaseException) -> list[alert_pb2.Alert]:
        if not isinstance(error, BrokenProcessPool):
            raise error
        with self._lock:
            pool = self._pool
            try:
                return [
                    alert_pb2.Alert.FromString(b)
                    for b in pool.submit(_child_process, batch.agent_id, _raw(batch)).result()
                ]
            except BrokenProcessPool:
                pass  # this pool is the dead one: start another, once
            log.error("detection process died; restarting it")
            self._on_restart()
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            try:
                out = self._pool.submit(_child_process, batch.agent_id, _raw(batch)).result()
            except BrokenProcessPool as exc:
                raise RuntimeError("detection process died again at once") from exc
            return [alert_pb2.Alert.FromString(b) for b in out]

    def reload(self, rule_paths: Sequence[Path]) -> Future[ReloadSummary]:
        self._paths = [str(p) for p in rule_paths]  # a restarted child loads these too
        return self._control(_child_reload, self._paths)

    def save_state(self, path: Path) -> Future[int]:
        return self._control(_child_save_state, str(path))

    def stats(self) -> Future[EngineStats]:
        return self._control(_child_stats)

    def _control(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool as exc:
            failed: Future[T] = Future()
            failed.set_exception(exc)
            return failed

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _raw(batch: StoredBatch) -> bytes:
    """The batch as received on the wire, or re-serialized when it came another way."""
    return (
        batch.raw
        or agent_pb2.AgentMessage(
            batch=agent_pb2.EventBatch(agent_id=batch.agent_id, seq=batch.seq, events=batch.events)
        ).SerializeToString()
    )
