"""Compliance findings recomputed continuously in the collector.

Every `findings.interval_s` the findings (findings.py, incident_findings.py) are computed on the
store thread; the counts by code, severity and outcome are exported as a gauge
(`canhgac_collector_findings`), and each finding that appears or goes away is logged once with
its legal basis. `canhgac-collector findings` prints the current list.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Mapping

from prometheus_client import Gauge

from collector.config import CollectorConfig
from collector.dossiers.findings import Finding, compute_findings
from collector.dossiers.incident_findings import incident_findings
from collector.dossiers.regime import Regime
from collector.storage.base import Store
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.findings")


def all_findings(
    store: Store,
    regime: Regime,
    config: CollectorConfig,
    now: dt.datetime,
    *,
    regimes: Mapping[str, Regime] | None = None,
    system_id: str | None = None,
) -> list[Finding]:
    """Every compliance finding: the registry's (findings.py), then the incidents' clocks."""
    return [
        *compute_findings(store, regime, config, now, regimes=regimes, system_id=system_id),
        *incident_findings(store, regime, now, regimes=regimes, system_id=system_id),
    ]


def _key(f: Finding) -> tuple[str, str, str, str]:
    subject = f.system_id or f.agent_id or f.hostname or ""
    detail = str(f.data.get("kind") or f.data.get("incident_id") or f.data.get("duty") or "")
    return (f.code, subject, detail, f.outcome)


class FindingsWorker:
    """Recomputes the findings periodically; `latest` holds the last result."""

    def __init__(
        self,
        store: StoreWorker,
        config: CollectorConfig,
        regime: Regime,
        gauge: Gauge,
        *,
        regimes: Mapping[str, Regime] | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store = store
        self._regimes = regimes
        self._config = config
        self._regime = regime
        self._gauge = gauge
        self._now = now
        self.latest: list[Finding] = []
        self._seen: set[tuple[str, str, str, str]] = set()
        self._labels: set[tuple[str, str, str]] = set()

    def _compute(self) -> list[Finding]:
        return all_findings(
            self._store.store, self._regime, self._config, self._now(), regimes=self._regimes
        )

    async def run_once(self) -> list[Finding]:
        found = await self._store.run(self._compute)
        counts = Counter((f.code, f.severity, f.outcome) for f in found)
        for labels in self._labels - set(counts):
            self._gauge.labels(*labels).set(0)
        for labels, n in counts.items():
            self._gauge.labels(*labels).set(n)
        self._labels |= set(counts)
        keys = {_key(f): f for f in found}
        for key in keys.keys() - self._seen:
            f = keys[key]
            basis = "; ".join(f"{b.source} [{b.confidence}]" for b in f.basis)
            log.warning(
                "finding: %s",
                f.message_en,
                extra={"fields": {"code": f.code, "system": key[1], "basis": basis}},
            )
        for key in self._seen - keys.keys():
            log.info("finding resolved", extra={"fields": {"code": key[0], "system": key[1]}})
        self._seen = set(keys)
        self.latest = found
        return found

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # reported; retried at the next interval
                log.exception("computing the compliance findings failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
