"""From a pySigma SigmaCorrelationRule to the runtime correlation of its type.

Everything a rule can say that we cannot honour is refused with a RuleError located at the
rule, so the loader reports it instead of running it wrongly: extended (boolean) conditions,
unknown group-by or value fields, aliases that do not cover every referenced rule, and the
value_sum/avg/percentile/median types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule

from canhgac import fields as vocabulary
from canhgac.errors import RuleError
from collector.detection.base import rule_error
from collector.detection.correlation.base import (
    DEFAULT_MAX_GROUPS,
    NS_PER_S,
    Threshold,
    WindowCorrelation,
)
from collector.detection.correlation.event_count import EventCountCorrelation
from collector.detection.correlation.temporal import TemporalCorrelation
from collector.detection.correlation.value_count import ValueCountCorrelation
from collector.detection.ruleset import reference_key

AnyCorrelation = WindowCorrelation[Any]


def referenced_rules(rule: SigmaCorrelationRule) -> tuple[str, ...]:
    """The rule's `rules` as reference keys, in the listed order."""
    return tuple(reference_key(ref.reference) for ref in rule.rules or ())


def _condition(rule: SigmaCorrelationRule) -> SigmaCorrelationCondition:
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise rule_error("extended correlation conditions are unsupported", rule)
    return condition


def _aliases(rule: SigmaCorrelationRule) -> dict[str, dict[str, str]]:
    refs = set(referenced_rules(rule))
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        mapping = {reference_key(ref.reference): path for ref, path in alias.mapping.items()}
        for path in mapping.values():
            if not vocabulary.is_known_field(path):
                raise rule_error(f"alias '{alias.alias}' maps to unknown field '{path}'", rule)
        if set(mapping) != refs:
            missing = sorted(refs - set(mapping)) or sorted(set(mapping) - refs)
            raise rule_error(
                f"alias '{alias.alias}' must map exactly the referenced rules (not {missing})",
                rule,
            )
        aliases[alias.alias] = mapping
    return aliases


def _common(rule: SigmaCorrelationRule, max_groups: int) -> dict[str, Any]:
    aliases = _aliases(rule)
    group_by = tuple(rule.group_by or ())
    for name in group_by:
        if name not in aliases and not vocabulary.is_known_field(name):
            raise rule_error(f"unknown group-by field '{name}'", rule)
    return {
        "group_by": group_by,
        "timespan_ns": int(rule.timespan.seconds) * NS_PER_S,
        "max_groups": max_groups,
        "aliases": aliases,
    }


def _threshold(condition: SigmaCorrelationCondition) -> Threshold:
    return Threshold(condition.op.name.lower(), condition.count)


def event_count_from_sigma(rule: SigmaCorrelationRule, *, max_groups: int) -> AnyCorrelation:
    """Build from a pySigma SigmaCorrelationRule of type event_count."""
    threshold = _threshold(_condition(rule))
    return EventCountCorrelation(threshold=threshold, **_common(rule, max_groups))


def value_count_from_sigma(rule: SigmaCorrelationRule, *, max_groups: int) -> AnyCorrelation:
    """Build from a pySigma SigmaCorrelationRule of type value_count."""
    condition = _condition(rule)
    common = _common(rule, max_groups)
    value_field = condition.fieldref
    if not isinstance(value_field, str):
        raise rule_error("value_count needs exactly one condition field", rule)
    if value_field not in common["aliases"] and not vocabulary.is_known_field(value_field):
        raise rule_error(f"unknown condition field '{value_field}'", rule)
    return ValueCountCorrelation(threshold=_threshold(condition), value_field=value_field, **common)


def temporal_from_sigma(rule: SigmaCorrelationRule, *, max_groups: int) -> AnyCorrelation:
    """Build from a pySigma SigmaCorrelationRule of type temporal or temporal_ordered."""
    return TemporalCorrelation(
        rules=referenced_rules(rule),
        ordered=rule.type.name.lower() == "temporal_ordered",
        threshold=_threshold(_condition(rule)),
        **_common(rule, max_groups),
    )


# Correlation kinds by Sigma type name; the value_sum/avg/... kinds are not implemented.
CORRELATION_TYPES: Final[Mapping[str, Callable[..., AnyCorrelation]]] = {
    "event_count": event_count_from_sigma,
    "value_count": value_count_from_sigma,
    "temporal": temporal_from_sigma,
    "temporal_ordered": temporal_from_sigma,
}


def build_correlation(
    rule: SigmaCorrelationRule, *, max_groups: int = DEFAULT_MAX_GROUPS
) -> AnyCorrelation:
    """The runtime correlation for a pySigma correlation rule; RuleError if unsupported."""
    kind = rule.type.name.lower()
    build = CORRELATION_TYPES.get(kind)
    if build is None:
        raise rule_error(f"unsupported correlation type '{kind}'", rule)
    try:
        return build(rule, max_groups=max_groups)
    except RuleError as exc:
        if exc.location is not None:
            raise
        raise rule_error(exc.message, rule) from exc
