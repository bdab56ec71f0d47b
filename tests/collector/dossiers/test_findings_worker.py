"""The collector recomputes findings: the gauge follows them, appearing and going away."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.config import CollectorConfig
from collector.dossiers.clock import VN_TZ
from collector.dossiers.findings_worker import FindingsWorker
from collector.dossiers.model import Assets
from collector.dossiers.regime import load_regimes
from collector.metrics import CollectorMetrics
from collector.storage.base import AgentRecord
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from tests.collector.dossiers.test_findings import system

REGIME = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes").select("vn-2026")
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)


async def test_the_gauge_counts_findings_and_drops_to_zero_when_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="canhgac.collector.findings")
    metrics = CollectorMetrics.create(CollectorRegistry())
    worker = StoreWorker(SqliteStore(tmp_path / "c.db"))
    try:
        store = worker.store
        store.migrate()
        now_ns = int(NOW.timestamp() * 1e9)
        store.upsert_agent(AgentRecord(agent_id="stray", hostname="web9", last_seen_ns=now_ns))
        findings = FindingsWorker(
            worker, CollectorConfig(), REGIME, metrics.findings, now=lambda: NOW
        )
        found = await findings.run_once()
        assert "agent_without_system" in {f.code for f in found}
        stray = metrics.findings.labels("agent_without_system", "warning", "violation")
        high = [f for f in found if f.code == "agent_without_system"]
        assert stray._value.get() == len(high) == 1
        assert "finding: " in caplog.text
        # The operator registers the host's system: that finding goes, the gauge follows.
        store.upsert_system(system(REGIME))
        store.set_assets("dvc", Assets(agents=("stray",)))
        found = await findings.run_once()
        assert "agent_without_system" not in {f.code for f in found}
        assert stray._value.get() == 0
        assert "finding resolved" in caplog.text
    finally:
        worker.close()
