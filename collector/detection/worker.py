"""The detection stage's loop: take stored batches off the bus, run rules, store alerts."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from canhgac.v1 import alert_pb2
from collector.bus.base import Bus
from collector.detection.isolation import BatchDetector
from collector.metrics import CollectorMetrics
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.detection")

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
    ) -> None:
        self._bus = bus
        self._detector = detector
        self._store = store
        self._metrics = metrics
        self._origin = origin
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._bus.next()
            self._metrics.bus_depth.set(self._bus.depth())
            started = time.perf_counter()
            try:
                alerts = await loop.run_in_executor(
                    self._executor, self._detector.process_batch, batch
                )
            except Exception:  # one bad batch must not stop detection
                self._metrics.errors.labels(stage="detection", error_type="rule_runtime").inc()
                log.exception("detection failed on a batch", extra={"fields": {"seq": batch.seq}})
                continue
            self._metrics.detection_seconds.observe(time.perf_counter() - started)
            if not alerts:
                continue
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
