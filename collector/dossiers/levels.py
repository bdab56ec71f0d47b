"""The level calculator: the minimum security level a system's attributes call for.

The criteria are data (`level_criteria` in the regime file, see regime.py); this module only
evaluates them. Every criterion whose conditions all hold applies, and the highest level among
them wins (ND 331/2026 Art. 8(2)). The result lists every criterion that applied with its
article, so an operator can see why. It is a minimum: the owner may propose a higher level
(Art. 10(5)) and may not split or merge systems to lower it (Art. 8(3)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.dossiers.regime import (
    INDUSTRIAL_CONTROL_WORKS,
    INFRASTRUCTURE_REACH,
    NATIONAL_SECURITY_IMPACT,
    Conditions,
    CountBound,
    IndustrialControlWorks,
    InfoClass,
    InfrastructureReach,
    LevelCriterion,
    NationalSecurityImpact,
    Regime,
    SystemType,
)


@dataclass(frozen=True)
class SystemAttributes:
    """What the level criteria look at (DOMAIN §6.1); the system registry maps onto this.

    `designated_level` is a level set by the Prime Minister or by the Cybersecurity Risk
    Management Framework; `online_public_service_level` is the old 1-4 online-public-service
    scale that only the legacy criteria use. `is_national_security_list` is carried for the
    registry but raises no level: under ND 331 Art. 20(4) it changes the approval procedure.
    """

    system_type: SystemType = "other"
    info_classes: frozenset[InfoClass] = field(default_factory=frozenset)
    handles_administrative_procedures: bool = False
    conditional_business_line: bool = False
    basic_data_subjects: int = 0
    sensitive_data_subjects: int = 0
    infrastructure_reach: InfrastructureReach = "none"
    requires_24x7: bool = False
    is_national_security_list: bool = False
    national_egovernment: bool = False
    central_national_data_store: bool = False
    national_security_impact: NationalSecurityImpact = "none"
    industrial_control_works: IndustrialControlWorks = "none"
    designated_level: int | None = None
    online_public_service_level: int | None = None

    def __post_init__(self) -> None:
        if self.basic_data_subjects < 0 or self.sensitive_data_subjects < 0:
            raise ValueError("data-subject counts cannot be negative")
        if self.designated_level is not None and not 1 <= self.designated_level <= 5:
            raise ValueError("designated_level must be 1-5")


@dataclass(frozen=True)
class LevelAssessment:
    """The minimum level and the criteria behind it (none applied: level 1, `applied` empty)."""

    regime_id: str
    level: int
    applied: tuple[LevelCriterion, ...]

    @property
    def deciding(self) -> tuple[LevelCriterion, ...]:
        """The applied criteria at the resulting level."""
        return tuple(c for c in self.applied if c.level == self.level)

    @property
    def articles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.article for c in self.applied))


def minimum_level(attrs: SystemAttributes, regime: Regime) -> LevelAssessment:
    """Evaluate every criterion of `regime` against `attrs`; the highest applicable level wins."""
    applied = tuple(
        sorted(
            (c for c in regime.level_criteria if conditions_hold(c.when, attrs)),
            key=lambda c: (-c.level, c.id),
        )
    )
    return LevelAssessment(regime.id, applied[0].level if applied else 1, applied)


def conditions_hold(when: Conditions, a: SystemAttributes) -> bool:
    """True when every condition given in `when` holds for `a`."""
    checks = (
        when.system_type is None or a.system_type in when.system_type,
        when.info_classes_only is None
        or (bool(a.info_classes) and a.info_classes <= when.info_classes_only),
        when.info_classes_any is None or bool(a.info_classes & when.info_classes_any),
        when.info_classes_none is None or not (a.info_classes & when.info_classes_none),
        _flag(when.handles_administrative_procedures, a.handles_administrative_procedures),
        _flag(when.conditional_business_line, a.conditional_business_line),
        _flag(when.requires_24x7, a.requires_24x7),
        _flag(when.national_egovernment, a.national_egovernment),
        _flag(when.central_national_data_store, a.central_national_data_store),
        _count(when.basic_data_subjects, a.basic_data_subjects),
        _count(when.sensitive_data_subjects, a.sensitive_data_subjects),
        _count(when.data_subjects, a.basic_data_subjects + a.sensitive_data_subjects),
        when.infrastructure_reach is None
        or _rank(INFRASTRUCTURE_REACH, a.infrastructure_reach)
        >= _rank(INFRASTRUCTURE_REACH, when.infrastructure_reach.at_least),
        when.national_security_impact is None
        or _rank(NATIONAL_SECURITY_IMPACT, a.national_security_impact)
        >= _rank(NATIONAL_SECURITY_IMPACT, when.national_security_impact.at_least),
        when.industrial_control_works is None
        or _rank(INDUSTRIAL_CONTROL_WORKS, a.industrial_control_works)
        >= _rank(INDUSTRIAL_CONTROL_WORKS, when.industrial_control_works.at_least),
        when.designated_level is None
        or (
            a.designated_level is not None and a.designated_level >= when.designated_level.at_least
        ),
        when.online_public_service_level is None
        or (
            a.online_public_service_level is not None
            and a.online_public_service_level >= when.online_public_service_level.at_least
        ),
    )
    return all(checks)


def _flag(wanted: bool | None, actual: bool) -> bool:
    return wanted is None or wanted == actual


def _count(bound: CountBound | None, actual: int) -> bool:
    if bound is None:
        return True
    if bound.at_least is not None:
        return actual >= bound.at_least
    assert bound.below is not None  # CountBound guarantees exactly one
    return actual < bound.below


def _rank(order: tuple[str, ...], value: str) -> int:
    return order.index(value)
