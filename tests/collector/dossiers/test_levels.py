"""The level calculator per criterion and regime; adding a criterion never lowers the level."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypeVar, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.dossiers.levels import SystemAttributes, minimum_level
from collector.dossiers.regime import (
    INDUSTRIAL_CONTROL_WORKS,
    INFRASTRUCTURE_REACH,
    NATIONAL_SECURITY_IMPACT,
    InfoClass,
    Regime,
    SystemType,
    load_regimes,
)

REGIMES = Path(__file__).resolve().parents[3] / "rules" / "regimes"
_LOADED = load_regimes(REGIMES)
NEW = _LOADED.select("vn-2026")
LEGACY = _LOADED.select("vn-legacy-2016")

T = TypeVar("T")
A = SystemAttributes
ONLINE = A(system_type="citizen_business_service", info_classes=frozenset({"personal_basic"}))
INFRA = A(system_type="infrastructure")
ICS = A(system_type="industrial_control")

# (attributes, expected level, criterion id that must decide) under ND 331/2026.
NEW_CASES = [
    (A(system_type="internal", info_classes=frozenset({"public"})), 1, "internal-public-only"),
    (
        A(system_type="internal", info_classes=frozenset({"public", "private"})),
        2,
        "internal-private-or-personal",
    ),
    (replace(ONLINE, basic_data_subjects=99_999), 2, "online-service-few-basic-subjects"),
    (replace(ONLINE, basic_data_subjects=99_999), 2, "online-service-unconditional-line"),
    (
        replace(
            ONLINE, info_classes=frozenset({"personal_sensitive"}), sensitive_data_subjects=9_999
        ),
        2,
        "online-service-few-sensitive-subjects",
    ),
    (replace(INFRA, infrastructure_reach="one_agency"), 2, "infrastructure-one-agency"),
    (A(system_type="internal", info_classes=frozenset({"state_secret"})), 3, "state-secret"),
    (A(national_security_impact="harm"), 3, "national-security-harm"),
    (replace(ONLINE, conditional_business_line=True), 3, "online-service-conditional-line"),
    (
        A(system_type="internal", handles_administrative_procedures=True),
        3,
        "administrative-procedures",
    ),
    (replace(ONLINE, basic_data_subjects=100_000), 3, "online-service-many-basic-subjects"),
    (
        replace(
            ONLINE, info_classes=frozenset({"personal_sensitive"}), sensitive_data_subjects=10_000
        ),
        3,
        "online-service-many-sensitive-subjects",
    ),
    (
        replace(INFRA, infrastructure_reach="ministry_or_province"),
        3,
        "infrastructure-ministry-or-province",
    ),
    (replace(ICS, industrial_control_works="grade_ii_iv"), 3, "industrial-control-grade-ii-iv"),
    (A(national_security_impact="serious_harm"), 4, "national-security-serious-harm"),
    (A(national_egovernment=True, requires_24x7=True), 4, "national-egovernment-24x7"),
    (
        replace(INFRA, infrastructure_reach="national", requires_24x7=True),
        4,
        "national-infrastructure-24x7",
    ),
    (replace(ICS, industrial_control_works="grade_i"), 4, "industrial-control-grade-i"),
    (A(national_security_impact="strategic"), 5, "national-security-strategic"),
    (A(central_national_data_store=True), 5, "central-national-data-store"),
    (replace(INFRA, infrastructure_reach="international"), 5, "international-infrastructure"),
    (
        replace(ICS, industrial_control_works="special_or_national_security"),
        5,
        "industrial-control-special-grade",
    ),
    (A(designated_level=4), 4, "designated-4"),
]

LEGACY_CASES = [
    (A(system_type="internal", info_classes=frozenset({"public"})), 1, "internal-public-only"),
    (
        A(system_type="internal", info_classes=frozenset({"personal_basic"})),
        2,
        "internal-private-or-personal",
    ),
    (A(online_public_service_level=2), 2, "online-public-service-level-1-2"),
    (replace(ONLINE, basic_data_subjects=9_999), 2, "online-service-few-users"),
    (replace(INFRA, infrastructure_reach="one_agency"), 2, "infrastructure-one-agency"),
    (A(online_public_service_level=3), 3, "online-public-service-level-3-4"),
    (
        replace(ONLINE, basic_data_subjects=5_000, sensitive_data_subjects=5_000),
        3,
        "online-service-many-users",
    ),
    (
        replace(INFRA, infrastructure_reach="ministry_or_province"),
        3,
        "infrastructure-sector-or-province",
    ),
    (A(national_security_impact="serious_harm"), 4, "national-security-serious-harm"),
    (A(national_security_impact="strategic"), 5, "national-security-strategic"),
]


@pytest.mark.parametrize(("attrs", "level", "criterion"), NEW_CASES)
def test_new_regime_criteria(attrs: SystemAttributes, level: int, criterion: str) -> None:
    result = minimum_level(attrs, NEW)
    assert result.level == level
    assert criterion in {c.id for c in result.deciding}
    assert all(c.article.startswith("ND 331/2026") for c in result.applied)


@pytest.mark.parametrize(("attrs", "level", "criterion"), LEGACY_CASES)
def test_legacy_regime_criteria(attrs: SystemAttributes, level: int, criterion: str) -> None:
    result = minimum_level(attrs, LEGACY)
    assert result.level == level
    assert criterion in {c.id for c in result.deciding}
    assert all(c.article.startswith("ND 85/2016") for c in result.applied)


def test_the_thresholds_differ_between_regimes() -> None:
    attrs = replace(ONLINE, basic_data_subjects=50_000)
    assert minimum_level(attrs, NEW).level == 2
    assert minimum_level(attrs, LEGACY).level == 3


def test_a_provincial_public_service_portal_is_at_least_level_3_and_lists_every_reason() -> None:
    portal = A(
        system_type="citizen_business_service",
        info_classes=frozenset({"public", "personal_basic"}),
        handles_administrative_procedures=True,
        basic_data_subjects=40_000,
    )
    result = minimum_level(portal, NEW)
    assert result.level == 3
    assert [c.id for c in result.deciding] == ["administrative-procedures"]
    assert {c.id for c in result.applied} == {
        "administrative-procedures",
        "online-service-few-basic-subjects",
        "online-service-unconditional-line",
    }
    assert result.articles == ("ND 331/2026 Art. 13(2)(b)", "ND 331/2026 Art. 12")


def test_no_criterion_gives_level_1_with_no_reason() -> None:
    result = minimum_level(A(), NEW)
    assert (result.level, result.applied) == (1, ())


def test_the_national_security_list_alone_raises_no_level() -> None:
    assert minimum_level(A(is_national_security_list=True), NEW).level == 1


def test_bad_attributes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        A(basic_data_subjects=-1)
    with pytest.raises(ValueError, match="1-5"):
        A(designated_level=6)


INFO: st.SearchStrategy[InfoClass] = st.sampled_from(get_args(InfoClass))
COUNTS = st.integers(min_value=0, max_value=300_000)


@st.composite
def attributes(draw: st.DrawFn) -> SystemAttributes:
    return SystemAttributes(
        system_type=draw(st.sampled_from(get_args(SystemType))),
        info_classes=frozenset(draw(st.sets(INFO))),
        handles_administrative_procedures=draw(st.booleans()),
        conditional_business_line=draw(st.booleans()),
        basic_data_subjects=draw(COUNTS),
        sensitive_data_subjects=draw(COUNTS),
        infrastructure_reach=draw(st.sampled_from(INFRASTRUCTURE_REACH)),
        requires_24x7=draw(st.booleans()),
        national_egovernment=draw(st.booleans()),
        central_national_data_store=draw(st.booleans()),
        national_security_impact=draw(st.sampled_from(NATIONAL_SECURITY_IMPACT)),
        industrial_control_works=draw(st.sampled_from(INDUSTRIAL_CONTROL_WORKS)),
        designated_level=draw(st.none() | st.integers(1, 5)),
        online_public_service_level=draw(st.none() | st.integers(1, 4)),
    )


def _up(order: tuple[T, ...], value: T, steps: int) -> T:
    return order[min(len(order) - 1, order.index(value) + steps)]


@st.composite
def more(draw: st.DrawFn, a: SystemAttributes) -> SystemAttributes:
    """`a` with some criteria added: more data classes, subjects, reach, flags or impact."""
    return replace(
        a,
        info_classes=a.info_classes | draw(st.sets(INFO)),
        handles_administrative_procedures=a.handles_administrative_procedures
        or draw(st.booleans()),
        conditional_business_line=a.conditional_business_line or draw(st.booleans()),
        basic_data_subjects=a.basic_data_subjects + draw(COUNTS),
        sensitive_data_subjects=a.sensitive_data_subjects + draw(COUNTS),
        infrastructure_reach=_up(
            INFRASTRUCTURE_REACH, a.infrastructure_reach, draw(st.integers(0, 4))
        ),
        requires_24x7=a.requires_24x7 or draw(st.booleans()),
        national_egovernment=a.national_egovernment or draw(st.booleans()),
        central_national_data_store=a.central_national_data_store or draw(st.booleans()),
        national_security_impact=_up(
            NATIONAL_SECURITY_IMPACT, a.national_security_impact, draw(st.integers(0, 3))
        ),
        industrial_control_works=_up(
            INDUSTRIAL_CONTROL_WORKS, a.industrial_control_works, draw(st.integers(0, 3))
        ),
        designated_level=max(a.designated_level or 0, draw(st.integers(0, 5))) or None,
        online_public_service_level=max(a.online_public_service_level or 0, draw(st.integers(0, 4)))
        or None,
    )


@pytest.mark.parametrize("regime", [NEW, LEGACY], ids=lambda r: r.id)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_adding_a_criterion_never_lowers_the_level(regime: Regime, data: st.DataObject) -> None:
    base = data.draw(attributes())
    bigger = data.draw(more(base))
    assert minimum_level(bigger, regime).level >= minimum_level(base, regime).level


@settings(max_examples=200, deadline=None)
@given(attrs=attributes())
def test_the_level_is_the_highest_applied_criterion(attrs: SystemAttributes) -> None:
    result = minimum_level(attrs, NEW)
    assert 1 <= result.level <= 5
    assert all(c.level <= result.level for c in result.applied)
    assert not result.applied or result.deciding
