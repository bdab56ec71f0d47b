"""Retention by level: the startup refusal, the effective months, deletion on every backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from canhgac.errors import ConfigError
from canhgac.v1 import events_pb2
from collector.config import RetentionConfig
from collector.dossiers.clock import VN_TZ
from collector.dossiers.model import Assets, InformationSystem
from collector.dossiers.regime import load_regimes
from collector.dossiers.retention import apply_retention, cutoff_ns, retention_policy
from collector.storage.base import AgentRecord, Store
from tests.collector.storage import conftest as storage

backend = storage.backend
postgres_server = storage.postgres_server
postgres_dsn = storage.postgres_dsn
store = storage.store

REGIMES = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes")
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)
DAY = 86_400 * 10**9


def system(system_id: str, level: int, regime: str = "vn-2026") -> InformationSystem:
    return InformationSystem.model_validate(
        {
            "id": system_id,
            "name": system_id,
            "owner": {"name": "o"},
            "operator": {"name": "p"},
            "system_type": "internal",
            "info_classes": ["public"],
            "approved_level": level,
            "proposed_level": level,
            "regime": regime,
        }
    )


def test_a_per_system_value_below_the_legal_minimum_is_refused() -> None:
    config = RetentionConfig(per_system={"portal": 2})
    with pytest.raises(ConfigError) as exc:
        retention_policy([system("portal", 3)], config, REGIMES["vn-2026"])
    assert exc.value.location == "retention.per_system.portal"
    assert "'portal'" in exc.value.message
    assert "minimum of 3 month" in exc.value.message
    assert "TCVN 14423:2026" in exc.value.message


def test_effective_is_the_longer_of_configured_and_minimum() -> None:
    config = RetentionConfig(default_months=1, per_system={"big": 24})
    systems = [system("l4", 4), system("big", 3), system("l1", 1)]
    policy = retention_policy(systems, config, REGIMES["vn-2026"])
    assert policy.months_for("l4") == 6  # default raised to the level 4 minimum
    assert policy.months_for("big") == 24
    assert policy.months_for("l1") == 1
    assert policy.months_for(None) == 1
    assert policy.months_for("unregistered") == 1
    # Legacy minimum unknown: nothing refused, the configured value applies.
    legacy = retention_policy(
        [system("l4", 4, "vn-legacy-2016")],
        RetentionConfig(default_months=1, per_system={"l4": 1}),
        REGIMES["vn-legacy-2016"],
    )
    assert legacy.months_for("l4") == 1
    # At runtime (not strict) a too-short entry is raised instead of refused.
    lax = retention_policy(
        [system("p", 3)], RetentionConfig(per_system={"p": 2}), REGIMES["vn-2026"], strict=False
    )
    assert lax.months_for("p") == 3


def _store_events(store: Store, agent: str, seq: int, ages_days: list[int]) -> None:
    now_ns = cutoff_ns(NOW, 0)
    events = [
        events_pb2.Event(id=f"{agent}-{seq}-{i}", time_ns=now_ns - d * DAY)
        for i, d in enumerate(ages_days)
    ]
    assert store.store_batch(agent, seq, events, now_ns - min(ages_days) * DAY)


def test_events_past_their_systems_retention_are_deleted_in_batches(store: Store) -> None:
    store.upsert_system(system("l4", 4))
    store.set_assets("l4", Assets(agents=("a4",)))
    for a in ("a4", "free"):
        store.upsert_agent(AgentRecord(agent_id=a))
    # 100 and 200 days old: past 1 month (default) but only 200 is past 6 months (level 4).
    _store_events(store, "a4", 1, [200, 200, 200])
    _store_events(store, "a4", 2, [100])
    _store_events(store, "free", 1, [100, 100, 100])
    _store_events(store, "free", 2, [5])
    policy = retention_policy(
        store.list_systems(), RetentionConfig(default_months=1), REGIMES["vn-2026"]
    )
    run = apply_retention(store, policy, NOW, batch_rows=2)
    assert run.deleted == 6
    assert run.by_system == {"l4": 3, "": 3}
    assert run.complete
    assert store.count_events(agent_id="a4") == 1
    assert store.count_events(agent_id="free") == 1
    # Deduplication survives: the batches rows stay, a re-sent batch is not stored again.
    assert store.last_seq("a4") == 2
    assert not store.store_batch("a4", 1, [events_pb2.Event(id="again")], 1)
    assert apply_retention(store, policy, NOW).deleted == 0


def test_delete_events_before_contract(store: Store) -> None:
    _store_events(store, "x", 1, [10, 10, 10])
    _store_events(store, "y", 1, [10])
    before = cutoff_ns(NOW, 0)
    with pytest.raises(ValueError, match="limit"):
        store.delete_events_before(before, limit=0)
    assert store.delete_events_before(before, agent_ids=[]) == 0
    assert store.delete_events_before(before, except_agent_ids=["x"]) == 1
    assert store.delete_events_before(before, agent_ids=["x"], limit=2) == 2
    assert store.delete_events_before(before - 20 * DAY) == 0  # not old enough
    assert store.delete_events_before(before) == 1
    assert store.count_events() == 0
