"""The detection stage's loop: take stored batches off the bus, run rules, store alerts.

Batches are submitted to the detector in bus order, with up to `in_flight` waiting, and their
results collected in the same order. Control operations (a rule reload, saving the correlation
state, reading the engine's statistics) go into the same queue, so each happens between two
batches: nothing is evaluated twice or skipped across a reload. Alerts pass the enricher
(suppression, incident grouping, severity by the system's level) before they are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canhgac.v1 import alert_pb2
from collector.bus.base import Bus, StoredBatch
from collector.detection.control import EngineStats, ReloadSummary
from collector.detection.isolation import BatchDetector
from collector.metrics import CollectorMetrics
from collector.storage.base import Store, StoredAlert
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.detection")

# Alerts in, alerts to store out (some suppressed, the rest enriched).
Enricher = Callable[[list[alert_pb2.Alert]], Awaitable[list[alert_pb2.Alert]]]

SEVERITY_NAMES = {
    alert_pb2.SEVERITY_INFORMATIONAL: "informational",
    alert_pb2.SEVERITY_LOW: "low",
    alert_pb2.SEVERITY_MEDIUM: "medium",
    alert_pb2.SEVERITY_HIGH: "high",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}


@dataclass(frozen=True)
class _Submitted:
    batch: StoredBatch
    future: Future[list[alert_pb2.Alert]]
    started: float


@dataclass(frozen=True)
class _Control:
    kind: str  # reload | save_state | stats
    future: Future[Any]


async def _as_is(alerts: list[alert_pb2.Alert]) -> list[alert_pb2.Alert]:
    return alerts


@dataclass
class DetectionSettings:
    """Where the rules are, where the correlation state is kept and how often it is saved."""

    rule_paths: Sequence[Path] = ()
    state_path: Path | None = None
    save_interval_s: float = 60.0


class DetectionWorker:
    """Runs the detector off the event loop, in bus order; see the module docstring."""

    # The last reload's account (rules, errors); None until the first reload.
    _last_reload: ReloadSummary | None = None

    def __init__(
        self,
        bus: Bus,
        detector: BatchDetector,
        store: StoreWorker,
        metrics: CollectorMetrics,
        origin: str,
        in_flight: int = 4,
        settings: DetectionSettings | None = None,
        enrich: Enricher = _as_is,
        outbox: Sequence[str] = (),
        on_enqueued: Callable[[], None] | None = None,
        on_stored: Callable[[list[StoredAlert]], None] | None = None,
    ) -> None:
        self._bus = bus
        self._detector = detector
        self._store = store
        self._metrics = metrics
        self._origin = origin
        self._in_flight = in_flight
        self._settings = settings or DetectionSettings()
        self._enrich = enrich
        # Upstream destinations each new alert (and incident) is queued for, in its own
        # transaction (collector/forward); on_enqueued wakes their workers.
        self._outbox = tuple(outbox)
        self._on_enqueued = on_enqueued
        # Called on the event loop with each round of newly stored alerts (final status).
        self._on_stored = on_stored
        self._pending: set[str] = set()  # control operations asked for, not yet queued
        self._wake = asyncio.Event()
        self._busy = 0  # submitted and not yet collected
        # Only for retries after a failure, which block (a restart of the child process).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-retry")

    def request_reload(self) -> None:
        """Reload the rules between the batch being submitted and the next (SIGHUP, a file
        change). Safe to call from the event loop at any time; requests coalesce."""
        self._request("reload")

    def _request(self, kind: str) -> None:
        self._pending.add(kind)
        self._wake.set()

    async def run(self) -> None:
        submitted: asyncio.Queue[_Submitted | _Control] = asyncio.Queue(maxsize=self._in_flight)
        feeder = asyncio.create_task(self._submit(submitted), name="detect-submit")
        timer = asyncio.create_task(self._save_periodically(), name="detect-save")
        try:
            while True:
                item = await submitted.get()
                try:
                    if isinstance(item, _Control):
                        await self._finish_control(item)
                    else:
                        await self._collect(item)
                finally:
                    self._busy -= 1
        finally:
            for task in (feeder, timer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _submit(self, submitted: asyncio.Queue[_Submitted | _Control]) -> None:
        next_batch: asyncio.Task[StoredBatch] | None = None
        try:
            while True:
                for kind in sorted(self._pending):
                    self._pending.discard(kind)
                    self._busy += 1
                    await submitted.put(_Control(kind, self._start_control(kind)))
                if next_batch is None:
                    next_batch = asyncio.create_task(self._take())
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait({next_batch, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                if next_batch.done():
                    batch, next_batch = next_batch.result(), None
                    self._metrics.bus_depth.set(self._bus.depth())
                    started = time.perf_counter()
                    await submitted.put(_Submitted(batch, self._detector.submit(batch), started))
        finally:
            if next_batch is not None:
                next_batch.cancel()

    async def _take(self) -> StoredBatch:
        batch = await self._bus.next()
        self._busy += 1  # counted from the moment it leaves the bus, for drain()
        return batch

    def _start_control(self, kind: str) -> Future[Any]:
        if kind == "reload":
            return self._detector.reload(list(self._settings.rule_paths))
        if kind == "save_state" and self._settings.state_path is not None:
            return self._detector.save_state(self._settings.state_path)
        return self._detector.stats()

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._settings.save_interval_s)
            self._request("stats")
            if self._settings.state_path is not None:
                self._request("save_state")

    async def _finish_control(self, item: _Control) -> None:
        try:
            result = await asyncio.wrap_future(item.future)
        except Exception as exc:  # noqa: BLE001  # reported; detection goes on with the old rules
            self._metrics.errors.labels(stage="detection", error_type=item.kind).inc()
            log.error("detection %s failed: %s", item.kind, exc)
            return
        if isinstance(result, ReloadSummary):
            self._reloaded(result)
            await self._audit_reload(result)
        elif isinstance(result, EngineStats):
            self._metrics.observe_engine(result)

    async def _audit_reload(self, summary: ReloadSummary) -> None:
        """Which rules are in force is evidence: each reload goes into the audit chain."""
        from collector.audit.system_events import record_rules  # the audit side of the app

        try:
            await self._store.run(
                record_rules,
                self._store.store,
                self._origin,
                summary,
                at_ns=time.time_ns(),
                reload=True,
            )
        except Exception:  # the reload itself stands; the missing record is counted
            self._metrics.errors.labels(stage="audit", error_type="rules_reload").inc()
            log.exception("the rule reload could not be written to the audit log")

    @property
    def last_reload(self) -> ReloadSummary | None:
        """What the last rule reload loaded and what failed (the console's rules page)."""
        return self._last_reload

    def _reloaded(self, summary: ReloadSummary) -> None:
        self._last_reload = summary
        outcome = "with_errors" if summary.errors else "ok"
        self._metrics.rule_reloads.labels(outcome=outcome).inc()
        self._metrics.rules_loaded.set(summary.loaded)
        self._metrics.rule_errors.set(len(summary.errors))
        for error in summary.errors:
            log.error("rule not loaded: %s", error)
        log.info(
            "rules reloaded",
            extra={
                "fields": {
                    "rules": summary.loaded,
                    "errors": len(summary.errors),
                    "state_kept": len(summary.state_kept),
                    "state_dropped": summary.state_dropped,
                }
            },
        )

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
        alerts = await self._enrich(alerts)
        if not alerts:
            return
        inserted = await self._store.run(
            self._store.store.insert_alerts, alerts, outbox=self._outbox
        )
        for alert, new in zip(alerts, inserted, strict=True):
            if new and alert.incident_id:
                # The first alert of an incident id opens the incident record; the rest join it.
                await self._store.run(
                    self._store.store.open_or_attach,
                    alert,
                    at_ns=time.time_ns(),
                    outbox=self._outbox,
                )
            if new:
                self._metrics.alerts.labels(
                    rule_id=alert.rule_id,
                    severity=SEVERITY_NAMES.get(alert.severity, "unknown"),
                    system=alert.system_id or "unassigned",
                ).inc()
                log.info(
                    "alert: %s",
                    alert.rule_title,
                    extra={"fields": {"alert_id": alert.id, "host": alert.host}},
                )
        if self._on_enqueued is not None and self._outbox and any(inserted):
            self._on_enqueued()
        new_ids = [alert.id for alert, new in zip(alerts, inserted, strict=True) if new]
        if new_ids:
            await self._after_insert(new_ids)

    async def _after_insert(self, new_ids: list[str]) -> None:
        """Apply operators' suppressions to the new alerts, then hand them on (live view)."""
        muted, stored = await self._store.run(
            _suppress_and_read,
            self._store.store,
            new_ids,
            time.time_ns(),
            self._on_stored is not None,
        )
        for alert in stored:
            if alert.alert.id in muted:
                self._metrics.alerts_stored_suppressed.labels(
                    rule_id=alert.alert.rule_id, reason="operator_suppression"
                ).inc()
        if self._on_stored is not None and stored:
            try:
                self._on_stored(stored)
            except Exception:  # a failing listener must not stop detection
                self._metrics.errors.labels(stage="detection", error_type="on_stored").inc()
                log.exception("live alert listener failed")

    async def drain(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every batch on the bus has been evaluated, then
        save the correlation state. False when time ran out first (the rest is not evaluated:
        logged, and counted by the caller)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._bus.depth() or self._busy:
            if loop.time() > deadline:
                log.warning(
                    "detection did not finish the stored batches before stopping",
                    extra={"fields": {"bus_depth": self._bus.depth(), "in_flight": self._busy}},
                )
                return False
            await asyncio.sleep(0.05)  # polling two counters during shutdown, bounded above
        if self._settings.state_path is not None:
            try:
                await asyncio.wrap_future(self._detector.save_state(self._settings.state_path))
            except Exception as exc:  # noqa: BLE001  # stopping anyway; the windows restart
                log.error("could not save the correlation state: %s", exc)
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._detector.close()


def _suppress_and_read(
    store: Store, alert_ids: list[str], now_ns: int, read: bool
) -> tuple[set[str], list[StoredAlert]]:
    """On the store thread: apply suppressions, then re-read the alerts (in the given order)
    when a listener wants them, else only the suppressed ones (for their rule ids)."""
    muted = set(store.apply_suppressions(alert_ids, now_ns))
    wanted = alert_ids if read else [i for i in alert_ids if i in muted]
    found = (store.get_alert(alert_id) for alert_id in wanted)
    return muted, [alert for alert in found if alert is not None]
