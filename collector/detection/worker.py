"""The detection stage's loop: take stored batches off the bus, run rules, store alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from canhgac.v1 import alert_pb2
from collector.bus.base import Bus, StoredBatch
from collector.detection.isolation import BatchDetector
from collector.metrics import CollectorMetrics
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.detection")


@dataclass(frozen=True)
class _Submitted:
    batch: StoredBatch
    future: Future[list[alert_pb2.Alert]]
    started: float


SEVERITY_NAMES = {
    alert_pb2.SEVERITY_INFORMATIONAL: "informational",
    alert_pb2.SEVERITY_LOW: "low",
    alert_pb2.SEVERITY_MEDIUM: "medium",
    alert_pb2.SEVERITY_HIGH: "high",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}


class DetectionWorker:
    """Runs the detector on its own thread so rule evaluation never stalls the event loop."""

    def __init__(
        self,
        bus: Bus,
        detector: BatchDetector,
        store: StoreWorker,
        metrics: CollectorMetrics,
        origin: str,
        in_flight: int = 4,
    ) -> None:
        self._bus = bus
        self._detector = detector
        self._store = store
        self._metrics = metrics
        self._origin = origin
        self._in_flight = in_flight
        # Only for retries after a failure, which block (a restart of the child process).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-retry")

    async def run(self) -> None:
        # Submitting runs ahead of collecting by up to `in_flight` batches, so the detector is
        # handed the next batch while it works on this one (one at a time left the child
        # process idle between batches, and the bus full).
        submitted: asyncio.Queue[_Submitted] = asyncio.Queue(maxsize=self._in_flight)
        feeder = asyncio.create_task(self._submit_from_bus(submitted), name="detect-submit")
        try:
            while True:
                await self._collect(await submitted.get())
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    async def _submit_from_bus(self, submitted: asyncio.Queue[_Submitted]) -> None:
        while True:
            batch = await self._bus.next()
            self._metrics.bus_depth.set(self._bus.depth())
            started = time.perf_counter()
            await submitted.put(_Submitted(batch, self._detector.submit(batch), started))

    async def _collect(self, item: _Submitted) -> None:
        try:
            try:
                alerts = await asyncio.wrap_future(item.future)
            except Exception as exc:  # noqa: BLE001  # the detector's retry decides
                alerts = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._detector.retry, item.batch, exc
                )
        except Exception:  # one bad batch must not stop detection
            self._metrics.errors.labels(stage="detection", error_type="rule_runtime").inc()
            log.exception("detection failed on a batch", extra={"fields": {"seq": item.batch.seq}})
            return
        self._metrics.detection_seconds.observe(time.perf_counter() - item.started)
        if not alerts:
            return
        for alert in alerts:
            alert.origin = alert.origin or self._origin
        inserted = await self._store.run(self._store.store.insert_alerts, alerts)
        for alert, new in zip(alerts, inserted, strict=True):
            if new:
                self._metrics.alerts.labels(
                    rule_id=alert.rule_id,
                    severity=SEVERITY_NAMES.get(alert.severity, "unknown"),
                ).inc()
                log.info(
                    "alert: %s",
                    alert.rule_title,
                    extra={"fields": {"alert_id": alert.id, "host": alert.host}},
                )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._detector.close()
