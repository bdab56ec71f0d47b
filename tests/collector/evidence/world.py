"""A small collector world to export: one system with two agents, events, an alert, a stray
agent of no system, a signing key, and a configuration holding secrets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from canhgac.v1 import alert_pb2, events_pb2
from collector.config import CollectorConfig, DetectionConfig, DossiersConfig, StorageConfig
from collector.dossiers.clock import VN_TZ
from collector.dossiers.model import Assets
from collector.dossiers.regime import load_regimes
from collector.evidence.export import ExportResult, export_bundle
from collector.storage.base import AgentRecord, Store
from tests.collector.dossiers.test_findings import system

ROOT = Path(__file__).resolve().parents[3]
REGIMES = load_regimes(ROOT / "rules" / "regimes")
START = dt.datetime(2026, 11, 1, tzinfo=VN_TZ)
END = dt.datetime(2026, 11, 3, tzinfo=VN_TZ)
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)
HOUR = 3600 * 10**9
DB_PASSWORD = "s3cr3t-Db-pw"


def ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 10**9


def config(tmp_path: Path) -> CollectorConfig:
    rules = ROOT / "rules" / "linux" / "auth"
    return CollectorConfig(
        name="tinh-x",
        state_dir=tmp_path / "state",
        storage=StorageConfig(
            kind="sqlite",
            postgres_dsn=SecretStr(f"postgresql://canhgac:{DB_PASSWORD}@db.local/canhgac"),
        ),
        detection=DetectionConfig(rule_paths=[rules] if rules.exists() else []),
        dossiers=DossiersConfig(regime_dir=ROOT / "rules" / "regimes"),
    )


def populate(store: Store) -> None:
    """System "dvc" with agents a1 (web1) and a2 (db1); "stray" belongs to no system."""
    store.upsert_system(system(REGIMES["vn-2026"]))
    store.set_assets("dvc", Assets(agents=("a1", "a2")))
    for agent, host in (("a1", "web1"), ("a2", "db1"), ("stray", "other")):
        store.upsert_agent(AgentRecord(agent_id=agent, hostname=host))
    t0 = ns(START)
    # a1: every hour of the first day; a2: only at the start (then silent: a gap).
    a1 = [
        events_pb2.Event(
            id=f"a1-{i}", time_ns=t0 + i * HOUR, category="authentication", source="authlog"
        )
        for i in range(24)
    ]
    inventory = events_pb2.Event(
        id="a1-inv",
        time_ns=t0 + 30 * 60 * 10**9,
        category="host",
        action="inventory",
        source="inventory",
    )
    inventory.inventory.os_name = "Debian"
    a1.append(inventory)
    assert store.store_batch("a1", 1, a1, t0)
    assert store.store_batch(
        "a2", 1, [events_pb2.Event(id="a2-0", time_ns=t0, category="host")], t0
    )
    # Before the period (retention proof) and of another system (not exported).
    assert store.store_batch("a2", 2, [events_pb2.Event(id="old", time_ns=t0 - 48 * HOUR)], t0)
    assert store.store_batch("stray", 1, [events_pb2.Event(id="s", time_ns=t0 + HOUR)], t0)
    alert = alert_pb2.Alert(
        id="al1",
        rule_id="r1",
        rule_title="SSH brute force",
        severity=alert_pb2.SEVERITY_HIGH,
        created_ns=t0 + HOUR,
        agent_id="a1",
        host="web1",
        system_id="dvc",
        summary="5 failed logins",
    )
    assert store.insert_alert(alert)


def export(
    store: Store,
    tmp_path: Path,
    key: Ed25519PrivateKey,
    name: str = "b.tar",
    *,
    raw_events: bool = False,
    force: bool = False,
) -> ExportResult:
    return export_bundle(
        store,
        "dvc",
        START,
        END,
        tmp_path / name,
        config=config(tmp_path),
        key=key,
        regimes=REGIMES,
        now=lambda: NOW,
        raw_events=raw_events,
        force=force,
    )
