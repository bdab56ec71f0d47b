"""The shipped legal regimes load, every value is sourced, and bad files are named precisely."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from canhgac.config import load_config
from canhgac.errors import ConfigError
from collector.detection.categories import INCIDENT_CATEGORIES
from collector.detection.ruleset import find_rule_files
from collector.dossiers.regime import (
    DEFAULT_REGIME,
    AnnualReport,
    AtLeast,
    Bilingual,
    Cadence,
    CalendarRangeError,
    CalendarSpec,
    Conditions,
    CountBound,
    Duration,
    Incidents,
    LevelRequirements,
    Regime,
    RegimeSpec,
    Sourced,
    Value,
    load_regime,
    load_regimes,
)

RULES = Path(__file__).resolve().parents[3] / "rules"
REGIMES = RULES / "regimes"
SHIPPED = ("vn-2026", "vn-legacy-2016")

# Models that only group sourced values; everything else must carry source and confidence.
STRUCTURAL = (
    RegimeSpec,
    LevelRequirements,
    Incidents,
    AnnualReport,
    CalendarSpec,
    Bilingual,
    Conditions,
    CountBound,
    AtLeast,
    Duration,
)


@pytest.fixture(scope="module")
def regimes() -> dict[str, Regime]:
    registry = load_regimes(REGIMES)
    assert registry.errors == ()
    return dict(registry)


def test_both_shipped_regimes_load_and_the_default_is_the_new_one(
    regimes: dict[str, Regime],
) -> None:
    assert sorted(regimes) == sorted(SHIPPED)
    assert DEFAULT_REGIME == "vn-2026"
    assert regimes["vn-2026"].in_force_on(dt.date(2026, 7, 1))
    assert not regimes["vn-2026"].in_force_on(dt.date(2026, 6, 30))
    assert regimes["vn-legacy-2016"].in_force_on(dt.date(2026, 6, 30))
    assert not regimes["vn-legacy-2016"].in_force_on(dt.date(2026, 7, 1))


def _walk(model: BaseModel, path: str) -> list[tuple[str, BaseModel]]:
    found: list[tuple[str, BaseModel]] = [(path, model)]
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, tuple)
            else [("", value)]
        )
        for key, item in items:
            if isinstance(item, BaseModel):
                found += _walk(item, f"{path}.{name}" + (f"[{key}]" if key != "" else ""))
    return found


@pytest.mark.parametrize("regime_id", SHIPPED)
def test_every_value_has_a_source_and_a_confidence(
    regimes: dict[str, Regime], regime_id: str
) -> None:
    regime = regimes[regime_id]
    calendar = load_regime(REGIMES / f"{regime_id}.yml").calendar
    assert calendar.first_year <= 2025
    assert calendar.last_year >= 2028
    nodes = _walk(regime.spec, regime_id)
    unsourced = [path for path, node in nodes if not isinstance(node, (*STRUCTURAL, Sourced))]
    assert unsourced == []
    sourced = [n for _, n in nodes if isinstance(n, Sourced)]
    assert len(sourced) > 100
    assert all(n.source.strip() and n.confidence in {"V", "S", "I"} for n in sourced)
    assert all(n.note for n in sourced if n.confidence == "I")


def test_the_calendar_entries_are_sourced_too() -> None:
    spec = load_config(CalendarSpec, REGIMES / "calendars" / "vn.yml")
    nodes = _walk(spec, "calendar")
    assert all(isinstance(n, (*STRUCTURAL, Sourced)) for _, n in nodes)
    assert {d.date.year for d in spec.days_off} == {2025, 2026, 2027, 2028}


@pytest.mark.parametrize("regime_id", SHIPPED)
def test_categories_are_the_ten_national_categories(
    regimes: dict[str, Regime], regime_id: str
) -> None:
    regime = regimes[regime_id]
    assert [c.id for c in regime.categories] == [
        "denial_of_service",
        "spoofing",
        "malware",
        "unauthorized_access",
        "defacement",
        "ransomware",
        "destruction",
        "data_theft",
        "multi_vector",
        "other",
    ]
    assert {c.id for c in regime.categories} == INCIDENT_CATEGORIES
    assert regime.category("defacement").name == Bilingual(vi="Thay đổi giao diện", en="Defacement")
    with pytest.raises(KeyError):
        regime.category("nope")


def test_new_regime_values_from_domain(regimes: dict[str, Regime]) -> None:
    r = regimes["vn-2026"]
    assert [r.requirements(n).log_retention_months.value for n in (2, 3, 4, 5)] == [1, 3, 6, 12]
    assert r.requirements(4).log_review.value is Cadence.MONTHLY
    assert [r.requirements(n).central_monitoring.value for n in (1, 2, 3, 4, 5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert [r.requirements(n).monitoring_24x7.value for n in (1, 2, 3, 4, 5)] == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert r.requirements(3).cloud_isolation.value == "logical"
    assert r.requirements(5).cloud_isolation.value == "physical"
    assert r.requirements(4).appraisal_body.value == "bca"
    assert r.requirements(3).appraisal_working_days.value == 15
    assert r.requirements(1).log_retention_months.confidence == "I"
    assert r.spec.online_service_log_retention_months.value == 12
    assert {d.id for d in r.deadlines("serious")} == {"initial-notice-24h", "report-72h"}
    assert {d.id for d in r.deadlines("normal", personal_data_breach=True)} == {
        "report-72h",
        "personal-data-breach-72h",
    }
    notice = r.deadline("national_security_or_major_disruption", "immediate_notice")
    assert notice is not None
    assert notice.after.unit == "immediate"
    assert r.deadline("normal", "initial_notice") is None
    with pytest.raises(ValueError, match="1-5"):
        r.requirements(6)


def test_legacy_regime_keeps_the_five_day_rule_and_marks_unknowns(
    regimes: dict[str, Regime],
) -> None:
    r = regimes["vn-legacy-2016"]
    report = r.deadline("normal", "report")
    assert report is not None
    assert (report.after.unit, report.after.amount) == ("days", 5)
    assert report.note
    assert "working" in report.note
    retention = r.requirements(3).log_retention_months
    assert retention.value is None
    assert retention.confidence == "I"
    assert r.requirements(5).assessment.value is Cadence.SEMIANNUAL


def test_regime_files_are_not_read_as_sigma_rules() -> None:
    files, errors = find_rule_files([RULES])
    assert errors == []
    assert files
    assert not [f for f in files if "regimes" in f.parts]


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "regimes"
    shutil.copytree(REGIMES, target)
    return target


def test_a_bad_value_is_named_by_file_and_path(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    f = d / "vn-2026.yml"
    text = f.read_text(encoding="utf-8")
    f.write_text(
        text.replace(
            'log_review: {value: monthly, source: "TCVN 14423:2026 §6',
            'log_review: {value: weekly, source: "TCVN 14423:2026 §6',
        ),
        encoding="utf-8",
    )
    registry = load_regimes(d)
    assert sorted(registry) == ["vn-legacy-2016"]
    (error,) = registry.errors
    assert error.location == str(f)
    assert "levels[4].log_review.value" in error.message
    with pytest.raises(ConfigError, match=r"unknown legal regime 'vn-2026'.*log_review"):
        registry.select("vn-2026")


def test_an_unknown_key_and_an_unsourced_inference_are_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    f = d / "vn-legacy-2016.yml"
    text = f.read_text(encoding="utf-8").replace("schema_version: 1", "schema_version: 1\nfoo: 1")
    text = text.replace(', confidence: I, note: "Not found."}', ", confidence: I}", 1)
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_regime(f)
    assert "foo: Extra inputs are not permitted" in info.value.message
    assert "needs a note" in info.value.message


def test_a_null_value_must_be_an_inference() -> None:
    with pytest.raises(ValueError, match="unknown value"):
        Value[int | None](value=None, source="x", confidence="V")


def test_a_criterion_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="at least one condition"):
        Conditions()


def test_working_days_outside_the_table_are_refused(regimes: dict[str, Regime]) -> None:
    cal = regimes["vn-2026"].calendar
    assert cal.is_working_day(dt.date(2026, 8, 22))  # swapped Saturday
    assert not cal.is_working_day(dt.date(2026, 2, 17))  # Tết
    with pytest.raises(CalendarRangeError, match="add the year"):
        cal.is_working_day(dt.date(2029, 1, 2))


def test_duplicate_regime_ids_disable_the_second_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    shutil.copy(d / "vn-2026.yml", d / "vn-2026-copy.yml")
    registry = load_regimes(d)
    assert sorted(registry) == sorted(SHIPPED)
    (error,) = registry.errors
    assert "duplicate regime id 'vn-2026'" in error.message
