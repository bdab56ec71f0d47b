"""A registered system judged under its legal regime: the minimum level the law requires.

The registry (model.py) records what an operator knows of a system; the level criteria
(levels.py) read a smaller, regime-neutral set of attributes. This module maps one onto the
other, so `canhgac-collector systems level ID` can say which level the system needs and why.
"""

from __future__ import annotations

from collector.dossiers.levels import LevelAssessment, SystemAttributes, minimum_level
from collector.dossiers.model import InformationSystem
from collector.dossiers.regime import InfoClass, InfrastructureReach, Regime

# The registry's classes onto the criteria's: every grade of state secret is a state secret.
_INFO_CLASS: dict[str, InfoClass] = {
    "public": "public",
    "private": "private",
    "personal_basic": "personal_basic",
    "personal_sensitive": "personal_sensitive",
    "state_secret_mat": "state_secret",
    "state_secret_toi_mat": "state_secret",
    "state_secret_tuyet_mat": "state_secret",
}
_REACH: dict[str | None, InfrastructureReach] = {
    None: "none",
    "agency": "one_agency",
    "ministry_or_province": "ministry_or_province",
    "national": "national",
}


def attributes_of(system: InformationSystem) -> SystemAttributes:
    """What the level criteria read from a registered system. The three classes of state
    secret (Mật, Tối mật, Tuyệt mật) all count as state secrets for the criteria."""
    classes = frozenset(_INFO_CLASS[c] for c in system.info_classes)
    return SystemAttributes(
        system_type=system.system_type,
        info_classes=classes,
        handles_administrative_procedures=system.handles_administrative_procedures,
        conditional_business_line=system.conditional_business_line,
        basic_data_subjects=system.data_subjects_basic,
        sensitive_data_subjects=system.data_subjects_sensitive,
        infrastructure_reach=_REACH[system.infrastructure_reach],
        requires_24x7=system.requires_24x7,
        is_national_security_list=system.is_national_security_list,
    )


def assess(system: InformationSystem, regime: Regime) -> LevelAssessment:
    return minimum_level(attributes_of(system), regime)
