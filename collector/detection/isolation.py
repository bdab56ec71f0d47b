"""Where the detection engine runs: on a thread of the collector, or in a child process.

Both are Detectors for DetectionWorker: `process_batch(batch) -> alerts`. In a child process
rule evaluation does not hold the collector's interpreter lock, which ingest and storage need;
the child owns the engine and its correlation state, fed one batch at a time in bus order.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

from canhgac.v1 import agent_pb2, alert_pb2
from collector.bus.base import StoredBatch
from collector.detection.engine import DetectionEngine

log = logging.getLogger("canhgac.collector.detection")


class BatchDetector(Protocol):
    def process_batch(self, batch: StoredBatch) -> list[alert_pb2.Alert]: ...

    def close(self) -> None: ...


class ThreadDetector:
    """The engine in the collector process (called from the detection thread)."""

    def __init__(self, engine: DetectionEngine) -> None:
        self.engine = engine

    def process_batch(self, batch: StoredBatch) -> list[alert_pb2.Alert]:
        return self.engine.process(batch.events)

    def close(self) -> None:
        return None


# The child process's engine, set by _child_init.
_ENGINE: DetectionEngine | None = None


def _child_init(rule_paths: Sequence[str]) -> None:
    global _ENGINE  # one engine per child process, by design
    # Load problems were already logged by the parent's own load of the same files.
    logging.disable(logging.CRITICAL)
    engine = DetectionEngine(clock_ns=time.time_ns)
    engine.load([Path(p) for p in rule_paths])
    _ENGINE = engine


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

    A restart loses correlation state held in the child (as a collector restart does).
    """

    def __init__(self, rule_paths: Sequence[Path], on_restart: Callable[[], None]) -> None:
        self._paths = [str(p) for p in rule_paths]
        self._on_restart = on_restart
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the collector has gRPC threads, which fork does not copy safely.
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(self._paths,),
        )
        # Start the child and load its rules now, not on the first batch (that takes about a
        # second, during which batches would queue up on the bus).
        pool.submit(_child_ready).result()
        return pool

    def process_batch(self, batch: StoredBatch) -> list[alert_pb2.Alert]:
        raw = (
            batch.raw
            or agent_pb2.AgentMessage(
                batch=agent_pb2.EventBatch(
                    agent_id=batch.agent_id, seq=batch.seq, events=batch.events
                )
            ).SerializeToString()
        )
        for attempt in (1, 2):
            try:
                out = self._pool.submit(_child_process, batch.agent_id, raw).result()
                return [alert_pb2.Alert.FromString(b) for b in out]
            except BrokenProcessPool:
                log.error("detection process died; restarting it (attempt %d)", attempt)
                self._on_restart()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
        raise RuntimeError("detection process keeps dying")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
