"""Review records (log/account review, vulnerability scan, pentest, restore test) and the
`review_overdue` finding, under both shipped regimes, with a fixed clock; `systems review`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import yaml
from pydantic import ValidationError

from collector import cli
from collector.config import CollectorConfig
from collector.dossiers.clock import CADENCE_MONTHS, VN_TZ, add_months, next_due
from collector.dossiers.findings import FINDINGS, Finding, compute_findings
from collector.dossiers.model import (
    REVIEW_KINDS,
    Decision,
    Dossier,
    InformationSystem,
    ReviewKind,
    ReviewRecord,
)
from collector.dossiers.regime import Cadence, Regime, Value, load_regimes
from collector.storage.base import AgentRecord, Store

ROOT = Path(__file__).resolve().parents[3]
REGIMES = load_regimes(ROOT / "rules" / "regimes")
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)
TODAY = NOW.date()
QUY_CHE = Decision(number="12/QĐ-UBND", date=dt.date(2020, 3, 1), issuer="UBND tỉnh")
APPROVAL = Decision(number="345/QĐ-UBND", date=dt.date(2026, 5, 10), issuer="UBND tỉnh")
LEVEL = 5  # every kind has an interval at level 5 in vn-2026
CODE = "review_overdue"


@pytest.fixture(params=["vn-2026", "vn-legacy-2016"])
def regime(request: pytest.FixtureRequest) -> Regime:
    return REGIMES[request.param]


class FakeStore:
    """The reads compute_findings makes, for one system and no agent."""

    def __init__(self, system: InformationSystem, dossier: Dossier) -> None:
        self.system, self.dossier = system, dossier

    def list_agents(self) -> list[AgentRecord]:
        return []

    def system_of_agent(self, agent_id: str) -> str | None:
        return None

    def list_systems(self) -> list[InformationSystem]:
        return [self.system]

    def get_dossier(self, system_id: str) -> Dossier | None:
        return self.dossier if system_id == self.system.id else None


def system(regime: Regime, level: int | None = LEVEL) -> InformationSystem:
    return InformationSystem.model_validate(
        {
            "id": "dvc",
            "name": "Cổng dịch vụ công",
            "owner": {"name": "UBND tỉnh"},
            "operator": {"name": "Sở KH&CN"},
            "system_type": "citizen_business_service",
            "info_classes": ["personal_basic"],
            "approved_level": level,
            "regime": regime.id,
        }
    )


def dossier(*reviews: tuple[ReviewKind, dt.date], approved: dt.date | None = None) -> Dossier:
    records = tuple(ReviewRecord(kind=k, date=d, by="Cty X") for k, d in reviews)
    if approved is None:
        return Dossier(quy_che_decision=QUY_CHE, reviews=records)
    approval = APPROVAL.model_copy(update={"date": approved})
    return Dossier(
        status="approved", approval_decision=approval, quy_che_decision=QUY_CHE, reviews=records
    )


def with_cadence(regime: Regime, kind: ReviewKind, cadence: Cadence | None) -> Regime:
    """`regime` with the level-5 value of `kind` replaced (an inference, as the data demands)."""
    value = Value[Cadence | None](
        value=cadence, source="test", confidence="I", note="replaced by the test"
    )
    req = regime.requirements(LEVEL).model_copy(update={kind: value})
    spec = regime.spec.model_copy(update={"levels": {**regime.spec.levels, LEVEL: req}})
    return dataclasses.replace(regime, spec=spec)


def known(regime: Regime, kind: ReviewKind) -> Regime:
    """The regime itself when it gives `kind` an interval at level 5, else one that does."""
    if next_due(NOW, getattr(regime.requirements(LEVEL), kind).value) is not None:
        return regime
    return with_cadence(regime, kind, Cadence.YEARLY)


def unknown(regime: Regime, kind: ReviewKind) -> Regime:
    """The regime itself when it does not know `kind` at level 5, else one that does not."""
    if getattr(regime.requirements(LEVEL), kind).value is None:
        return regime
    return with_cadence(regime, kind, None)


def reviews(
    regime: Regime, d: Dossier, *, kind: ReviewKind | None = None, level: int | None = LEVEL
) -> dict[str, Finding]:
    store = cast(Store, FakeStore(system(regime, level), d))
    found = compute_findings(store, regime, CollectorConfig(), NOW)
    by_kind = {f.data["kind"]: f for f in found if f.code == CODE}
    return by_kind if kind is None else {k: f for k, f in by_kind.items() if k == kind}


def cadence_of(regime: Regime, kind: ReviewKind) -> Cadence:
    value = getattr(regime.requirements(LEVEL), kind).value
    assert isinstance(value, Cadence)
    return value


def test_the_code_is_registered() -> None:
    assert CODE in FINDINGS
    assert set(REVIEW_KINDS) == {
        "log_review",
        "account_review",
        "vulnerability_scan",
        "penetration_test",
        "restore_test",
    }


@pytest.mark.parametrize("kind", REVIEW_KINDS)
def test_a_recent_record_gives_no_finding(regime: Regime, kind: ReviewKind) -> None:
    r = known(regime, kind)
    assert (
        reviews(r, dossier((kind, TODAY - dt.timedelta(days=1)), approved=APPROVAL.date), kind=kind)
        == {}
    )
    # due tomorrow (last + cadence): not yet overdue
    last = add_months(NOW + dt.timedelta(days=1), -1 * _months(cadence_of(r, kind))).date()
    assert reviews(r, dossier((kind, last)), kind=kind) == {}


def _months(cadence: Cadence) -> int:
    return CADENCE_MONTHS[cadence]


@pytest.mark.parametrize("kind", REVIEW_KINDS)
def test_an_old_record_is_overdue(regime: Regime, kind: ReviewKind) -> None:
    r = known(regime, kind)
    cadence = cadence_of(r, kind)
    old = add_months(NOW, -_months(cadence)).date()  # due today 00:00, now is 09:00
    d = dossier((kind, dt.date(2020, 1, 1)), (kind, old), approved=APPROVAL.date)
    f = reviews(r, d, kind=kind)[kind]
    assert f.outcome == "violation"
    assert f.severity == "high"  # level 5
    assert f.system_id == "dvc"
    assert f.data["last_review"] == old.isoformat()  # the latest record counts
    assert f.data["due"] == TODAY.isoformat()
    assert f.data["due_from"] == "last_review"
    assert f.data["cadence"] == str(cadence)
    req = getattr(r.requirements(LEVEL), kind)
    assert (f.basis[0].source, f.basis[0].confidence, f.basis[0].note) == (
        req.source,
        req.confidence,
        req.note,
    )
    assert f"{kind} overdue: last on {old.isoformat()}" in f.message_en
    assert "Quá hạn" in f.message_vi
    assert f.to_json()["data"]["kind"] == kind


@pytest.mark.parametrize("kind", REVIEW_KINDS)
def test_no_record_is_due_one_cadence_after_approval(regime: Regime, kind: ReviewKind) -> None:
    r = known(regime, kind)
    months = _months(cadence_of(r, kind))
    # approved long enough ago: the first review was due
    approved = add_months(NOW, -months).date()
    f = reviews(r, dossier(approved=approved), kind=kind)[kind]
    assert f.outcome == "violation"
    assert f.data["last_review"] is None
    assert f.data["due_from"] == "approval"
    assert f.data["due"] == TODAY.isoformat()
    assert f"No {kind} is recorded" in f.message_en
    # approved recently: the first one is not due yet
    recent = add_months(NOW + dt.timedelta(days=1), -months).date()
    assert reviews(r, dossier(approved=recent), kind=kind) == {}
    # another kind's record does not count
    other = next(k for k in REVIEW_KINDS if k != kind)
    assert kind in reviews(r, dossier((other, TODAY), approved=approved), kind=kind)


@pytest.mark.parametrize("kind", REVIEW_KINDS)
def test_no_record_and_no_approval_is_due_at_once(regime: Regime, kind: ReviewKind) -> None:
    r = known(regime, kind)
    f = reviews(r, dossier(), kind=kind)[kind]
    assert f.outcome == "violation"
    assert f.data["due_from"] == "now"
    assert f.data["due"] == TODAY.isoformat()
    assert "not approved" in f.message_en
    assert f.severity == "high"


def test_below_level_3_an_overdue_review_is_a_warning() -> None:
    f = reviews(REGIMES["vn-2026"], dossier(), kind="log_review", level=2)["log_review"]
    assert (f.severity, f.outcome, f.data["cadence"]) == ("warning", "violation", "yearly")


@pytest.mark.parametrize("kind", REVIEW_KINDS)
@pytest.mark.parametrize("recorded", [False, True])
def test_an_unknown_regime_value_cannot_be_judged(
    regime: Regime, kind: ReviewKind, recorded: bool
) -> None:
    r = unknown(regime, kind)
    d = dossier(*([(kind, dt.date(2020, 1, 1))] if recorded else []), approved=APPROVAL.date)
    f = reviews(r, d, kind=kind)[kind]
    assert f.outcome == "cannot_be_judged"
    assert f.severity == "info"
    assert f.data["cadence"] is None
    assert f"Cannot be judged ({kind})" in f.message_en
    assert "Không đánh giá được" in f.message_vi
    assert f.basis[0].confidence == "I"
    assert f.basis[0].note


def test_the_shipped_legacy_values_that_are_unknown_cannot_be_judged() -> None:
    found = reviews(REGIMES["vn-legacy-2016"], dossier(approved=APPROVAL.date))
    assert {k for k, f in found.items() if f.outcome == "cannot_be_judged"} == {
        "log_review",
        "account_review",
        "restore_test",
    }
    assert {k for k, f in found.items() if f.outcome == "violation"} == {
        "vulnerability_scan",
        "penetration_test",  # 6-monthly at level 5, since 10/05/2026
    }


def test_not_required_periodic_and_no_level() -> None:
    r = REGIMES["vn-2026"]
    # level 1: penetration test `none` (no finding); restore test `periodic` (no interval)
    found = reviews(r, dossier(approved=APPROVAL.date), level=1)
    assert "penetration_test" not in found
    assert found["restore_test"].outcome == "cannot_be_judged"
    assert "none is recorded" in found["restore_test"].message_en
    # a periodic activity recorded once: nothing to judge against, no finding
    done = dossier(("restore_test", dt.date(2020, 1, 1)), approved=APPROVAL.date)
    assert "restore_test" not in reviews(r, done, level=1)
    # no level decided: no level's requirements
    assert reviews(r, dossier(), level=None) == {}


def test_a_review_record_is_strict() -> None:
    with pytest.raises(ValidationError, match="kind"):
        ReviewRecord.model_validate({"kind": "audit", "date": "2026-01-01"})
    with pytest.raises(ValidationError, match="x"):
        ReviewRecord.model_validate({"kind": "log_review", "date": "2026-01-01", "x": 1})
    old = Dossier.model_validate_json('{"status": "draft"}')  # stored before reviews existed
    assert old.reviews == ()


PORTAL = """\
id: dvc-portal
name: Cổng dịch vụ công tỉnh
owner: {name: UBND tỉnh}
operator: {name: Trung tâm CNTT&TT}
system_type: citizen_business_service
info_classes: [public, personal_basic]
proposed_level: 3
"""
Run = Callable[..., int]


def make_run(tmp_path: Path, name: str) -> Run:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"state_dir: {tmp_path / name}\n")
    (tmp_path / name).mkdir()

    def run(*args: str) -> int:
        return cli.main([*args, "--config", str(config)])

    return run


def test_systems_review_records_shows_exports_and_imports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path, "a")
    f = tmp_path / "portal.yaml"
    f.write_text(PORTAL, encoding="utf-8")
    assert run("systems", "create", "--file", str(f)) == 0
    today = dt.datetime.now(VN_TZ).date()
    assert (
        run(
            "systems",
            "review",
            "dvc-portal",
            "--kind",
            "log_review",
            "--date",
            today.isoformat(),
            "--by",
            "Nguyễn Văn A",
            "--scope",
            "máy chủ web",
            "--notes",
            "không có bất thường",
            "--file-ref",
            "BB-01/2026",
            "--actor",
            "tester",
        )
        == 0
    )
    assert "log_review of" in capsys.readouterr().out
    assert (
        run("systems", "review", "dvc-portal", "--kind", "restore_test", "--date", "2026-01-15")
        == 0
    )
    assert "(2 review record(s))" in capsys.readouterr().out
    assert run("systems", "show", "dvc-portal") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["dossier"]["reviews"][0] == {
        "kind": "log_review",
        "date": today.isoformat(),
        "by": "Nguyễn Văn A",
        "scope": "máy chủ web",
        "notes": "không có bất thường",
        "file_ref": "BB-01/2026",
    }
    assert shown["dossier"]["reviews"][1]["kind"] == "restore_test"
    assert [e["note"] for e in shown["history"]] == ["review recorded", "review recorded"]
    assert shown["history"][0]["actor"] == "tester"
    assert shown["dossier"]["status"] == "draft"

    # refused: a date in the future, an unknown system, an unknown kind
    later = (today + dt.timedelta(days=2)).isoformat()
    assert run("systems", "review", "dvc-portal", "--kind", "log_review", "--date", later) == 2
    assert "after today" in capsys.readouterr().err
    assert run("systems", "review", "nope", "--kind", "log_review", "--date", "2026-01-01") == 2
    assert "no such system" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("systems", "review", "dvc-portal", "--kind", "audit", "--date", "2026-01-01")
    capsys.readouterr()

    # the findings: the log review of today is not overdue, the account review never done is
    regimes = str(ROOT / "rules" / "regimes")
    assert run("findings", "--json", "--system", "dvc-portal", "--regimes", regimes) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {f["data"]["kind"] for f in found if f["code"] == CODE}
    assert "log_review" not in kinds
    assert "account_review" in kinds

    # export -> import into an empty database -> the same export
    assert run("systems", "export") == 0
    exported = capsys.readouterr().out
    assert len(yaml.safe_load(exported)["systems"][0]["dossier"]["reviews"]) == 2
    other = make_run(tmp_path, "b")
    e = tmp_path / "export.yaml"
    e.write_text(exported, encoding="utf-8")
    assert other("systems", "import", str(e)) == 0
    capsys.readouterr()
    assert other("systems", "export") == 0
    assert capsys.readouterr().out == exported
