"""Every compliance finding, under both shipped regimes, with a fixed clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from collector.config import CollectorConfig, FindingsConfig, RetentionConfig
from collector.dossiers.clock import VN_TZ
from collector.dossiers.findings import FINDINGS, Finding, compute_findings
from collector.dossiers.model import (
    REVIEW_KINDS,
    Assessment,
    Assessor,
    Assets,
    ContractedSoc,
    Decision,
    Dossier,
    InformationSystem,
    ReviewRecord,
)
from collector.dossiers.regime import Regime, load_regimes
from collector.storage.base import AgentRecord, Store
from tests.collector.storage import conftest as storage

backend = storage.backend
postgres_server = storage.postgres_server
postgres_dsn = storage.postgres_dsn
store = storage.store

REGIMES = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes")
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)
NOW_NS = int(NOW.timestamp()) * 1_000_000_000
QUY_CHE = Decision(number="12/QĐ-UBND", date=dt.date(2026, 3, 1), issuer="UBND tỉnh")
APPROVAL = Decision(number="345/QĐ-UBND", date=dt.date(2026, 5, 10), issuer="UBND tỉnh")
CONFIG = CollectorConfig(findings=FindingsConfig(silent_after_s=3600))


@pytest.fixture(params=["vn-2026", "vn-legacy-2016"])
def regime(request: pytest.FixtureRequest) -> Regime:
    return REGIMES[request.param]


def system(regime: Regime, system_id: str = "dvc", **changes: Any) -> InformationSystem:
    """A citizen-service system whose minimum level is 3 under both regimes."""
    data: dict[str, Any] = {
        "id": system_id,
        "name": "Cổng dịch vụ công",
        "owner": {"name": "UBND tỉnh"},
        "operator": {"name": "Sở KH&CN"},
        "system_type": "citizen_business_service",
        "info_classes": ["personal_basic"],
        "handles_administrative_procedures": True,
        "data_subjects_basic": 200_000,
        "proposed_level": 3,
        "approved_level": 3,
        "regime": regime.id,
    }
    return InformationSystem.model_validate(data | changes)


def good_dossier(*assessed: dt.date) -> Dossier:
    return Dossier(
        status="approved",
        approval_decision=APPROVAL,
        quy_che_decision=QUY_CHE,
        assessments=tuple(
            Assessment(kind="periodic", date=d, assessor="Cty X", independent=True)
            for d in assessed
        ),
        reviews=tuple(ReviewRecord(kind=k, date=dt.date(2026, 11, 1)) for k in REVIEW_KINDS),
    )


def register(
    store: Store,
    s: InformationSystem,
    dossier: Dossier | None = None,
    *,
    agents: tuple[str, ...] = ("a1",),
    seen_ns: int = NOW_NS,
) -> None:
    store.upsert_system(s)
    if dossier is not None:
        store.set_dossier(s.id, dossier, actor="test", at_ns=1)
    store.set_assets(s.id, Assets(agents=agents))
    for a in agents:
        store.upsert_agent(AgentRecord(agent_id=a, hostname=f"{a}.local", last_seen_ns=seen_ns))


def codes(found: list[Finding], system_id: str | None = "dvc") -> dict[str, Finding]:
    return {f.code: f for f in found if f.system_id == system_id}


def findings(store: Store, regime: Regime, config: CollectorConfig = CONFIG) -> list[Finding]:
    return compute_findings(store, regime, config, NOW, regimes=REGIMES)


def test_a_compliant_level_3_system_has_only_the_forwarding_finding(
    store: Store, regime: Regime
) -> None:
    register(store, system(regime), good_dossier(dt.date(2026, 6, 1)))
    every = findings(store, regime, CONFIG.model_copy(update={}))
    found = codes(every)
    # reviews recorded this month: only the cadences the legacy regime does not know remain
    unknown = set() if regime.id == "vn-2026" else {"log_review", "account_review", "restore_test"}
    found.pop("review_overdue", None)
    reviews = [f for f in every if f.code == "review_overdue"]
    assert {f.data["kind"] for f in reviews} == unknown
    assert all(f.outcome == "cannot_be_judged" for f in reviews)
    retention = found.pop("retention_below_minimum", None)
    if regime.id == "vn-legacy-2016":  # legacy minimum unknown: said, not invented
        assert retention is not None
        assert retention.outcome == "cannot_be_judged"
        assert "Cannot be judged" in retention.message_en
        assert "Không đánh giá được" in retention.message_vi
        assert retention.basis[0].confidence == "I"
    else:
        assert retention is None
    assert sorted(found) == ["forwarding_not_configured"]
    fwd = found["forwarding_not_configured"]
    assert fwd.basis[0].note is not None
    assert "no upstream forwarder yet" in fwd.basis[0].note


def test_agent_without_system(store: Store, regime: Regime) -> None:
    store.upsert_agent(AgentRecord(agent_id="stray", hostname="web9", last_seen_ns=NOW_NS))
    (f,) = [f for f in findings(store, regime) if f.code == "agent_without_system"]
    assert (f.agent_id, f.hostname, f.system_id) == ("stray", "web9", None)
    assert "web9" in f.message_vi
    assert "web9" in f.message_en
    assert f.basis
    assert f.regime_id == regime.id


def test_level_3_without_approved_dossier_or_quy_che(store: Store, regime: Regime) -> None:
    register(store, system(regime), Dossier(status="sent_for_appraisal"))
    found = codes(findings(store, regime))
    assert found["dossier_not_approved"].severity == "high"
    assert found["dossier_not_approved"].data["status"] == "sent_for_appraisal"
    assert found["quy_che_missing"].basis[0].confidence == "V"
    expected = "ND 331/2026 Art. 30" if regime.id == "vn-2026" else "TT 12/2022 Art. 9(7)"
    assert expected in found["quy_che_missing"].basis[0].source
    # Level 2 systems are not held to it.
    store2 = system(
        regime,
        "l2",
        approved_level=None,
        proposed_level=2,
        system_type="internal",
        handles_administrative_procedures=False,
        data_subjects_basic=0,
    )
    register(store, store2, agents=("b1",))
    assert "dossier_not_approved" not in codes(findings(store, regime), "l2")


def test_silent_system(store: Store, regime: Regime) -> None:
    register(
        store, system(regime), good_dossier(dt.date(2026, 6, 1)), seen_ns=NOW_NS - 3601 * 10**9
    )
    register(store, system(regime, "none"), good_dossier(dt.date(2026, 6, 1)), agents=())
    register(store, system(regime, "live"), good_dossier(dt.date(2026, 6, 1)), agents=("c1",))
    found = findings(store, regime)
    silent = codes(found)["system_silent"]
    assert silent.data["agents"] == ["a1"]
    assert silent.severity == "high"
    assert "3600" in silent.message_en
    assert "system_silent" in codes(found, "none")
    assert "system_silent" not in codes(found, "live")


def test_assessment_overdue_for_the_level_cadence(store: Store, regime: Regime) -> None:
    # Level 3 is yearly under both regimes: assessed 29/11/2025 was due 29/11/2026.
    register(store, system(regime), good_dossier(dt.date(2025, 11, 29)))
    register(store, system(regime, "ok"), good_dossier(dt.date(2025, 12, 1)), agents=("b1",))
    register(store, system(regime, "never"), Dossier(quy_che_decision=QUY_CHE), agents=("c1",))
    found = findings(store, regime)
    overdue = codes(found)["assessment_overdue"]
    assert overdue.outcome == "violation"
    assert overdue.data["due"] == "2026-11-29"
    assert overdue.data["cadence"] == "yearly"
    assert "assessment_overdue" not in codes(found, "ok")
    assert "No assessment is recorded" in codes(found, "never")["assessment_overdue"].message_en


def test_assessment_without_interval_cannot_be_judged(store: Store, regime: Regime) -> None:
    low = system(
        regime,
        "l1",
        approved_level=1,
        proposed_level=1,
        system_type="internal",
        handles_administrative_procedures=False,
        data_subjects_basic=0,
    )
    register(store, low, Dossier())
    f = codes(findings(store, regime), "l1")["assessment_overdue"]
    assert f.outcome == "cannot_be_judged"
    assert f.severity == "info"
    assert f.message_en.startswith("Cannot be judged")


def test_retention_below_minimum(store: Store, regime: Regime) -> None:
    register(store, system(regime), good_dossier(dt.date(2026, 6, 1)))
    config = CONFIG.model_copy(update={"retention": RetentionConfig(default_months=1)})
    f = codes(findings(store, regime, config))["retention_below_minimum"]
    if regime.id == "vn-2026":
        assert f.outcome == "violation"
        assert f.data["minimum_months"] == 3
        assert f.data["effective_months"] == 3
        assert f.basis[0].source.startswith("TCVN 14423:2026")
    else:
        assert f.outcome == "cannot_be_judged"
        assert f.data["minimum_months"] is None


def test_forwarding_not_configured_only_from_level_3(store: Store, regime: Regime) -> None:
    register(store, system(regime), good_dossier(dt.date(2026, 6, 1)))
    f = codes(findings(store, regime))["forwarding_not_configured"]
    assert f.data["forwarder"] == "none"
    assert ("Law 116/2025" if regime.id == "vn-2026" else "TT 31/2017") in f.basis[0].source


def test_assessor_not_independent(store: Store, regime: Regime) -> None:
    s = system(
        regime,
        soc=ContractedSoc(name="SOC Y"),
        assessor=Assessor(name="Cty Z", independent_of_operator=True, independent_of_soc=False),
    )
    register(store, s, good_dossier(dt.date(2026, 6, 1)))
    register(
        store,
        system(regime, "ok", assessor=Assessor(name="Q", independent_of_operator=True)),
        good_dossier(dt.date(2026, 6, 1)),
        agents=("b1",),
    )
    found = findings(store, regime)
    f = codes(found)["assessor_not_independent"]
    assert "SOC Y" in f.message_en
    assert "operator" not in f.message_en
    assert "Directive 14/CT-TTg" in f.basis[0].source
    assert "assessor_not_independent" not in codes(found, "ok")


def test_level_below_the_calculators_minimum(store: Store, regime: Regime) -> None:
    register(store, system(regime, approved_level=None, proposed_level=2), Dossier())
    f = codes(findings(store, regime))["level_below_minimum"]
    assert f.data["minimum_level"] == 3
    assert f.data["proposed"] == 2
    assert f.basis
    assert all(b.source for b in f.basis)


def test_every_finding_code_is_produced_and_filtered_by_system(
    store: Store, regime: Regime
) -> None:
    store.upsert_agent(AgentRecord(agent_id="stray", last_seen_ns=NOW_NS))
    s = system(regime, approved_level=None, proposed_level=2, assessor=Assessor(name="Z"))
    register(store, s, Dossier(), seen_ns=0)
    register(store, system(regime, "l3"), Dossier(), agents=("b1",))
    config = CONFIG.model_copy(update={"retention": RetentionConfig(per_system={"l3": 1})})
    found = findings(store, regime, config)
    assert {f.code for f in found} == set(FINDINGS)
    only = compute_findings(store, regime, config, NOW, regimes=REGIMES, system_id="l3")
    assert {f.system_id for f in only} == {"l3"}
    for f in found:
        assert f.message_vi
        assert f.message_en
        assert f.to_json()["code"] == f.code
