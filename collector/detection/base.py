"""Small contracts shared by the detection stage: predicates, compiled rules, load results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.exceptions import SigmaRuleLocation
from sigma.rule import SigmaRuleBase

from canhgac.errors import RuleError

# A compiled detection: True when the flat field dict of one event matches.
Predicate = Callable[[Mapping[str, Any]], bool]
# A fact about every event a predicate will see: (field, lower-case values), the field's value
# or one of its elements is one of the values, compared case-insensitively (compile_rule).
Proven = tuple[str, frozenset[str]]


@dataclass(frozen=True)
class CompiledRule:
    """A base rule reduced to a predicate over `canhgac.fields.event_fields()` output.

    `categories` holds the lower-case `event.category` values an event must have for the
    predicate to be able to match, or None when the rule does not constrain the category; the
    engine uses it to index rules so an event only meets the rules of its category.
    `fields` holds every field path the predicate reads: the engine computes only those (see
    `canhgac.fields.fields_reader`), so a path missing here would make the rule miss events.
    """

    predicate: Predicate
    categories: frozenset[str] | None
    fields: frozenset[str] = frozenset()
    # With exactly one category: the predicate for events known to be of that category (the
    # rule's tests of `event.category` folded to True) and the fields that one reads.
    in_category: Predicate | None = None
    in_category_fields: frozenset[str] | None = None


@dataclass(frozen=True)
class RuleLoadError:
    """One rule (or whole file) that could not be loaded, and why. `rule_id` is "" if unknown."""

    path: str
    rule_id: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path} [{self.rule_id}]" if self.rule_id else self.path
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    """What loading rule directories produced: how many rules are active, and every failure."""

    loaded: int = 0
    errors: list[RuleLoadError] = field(default_factory=list)


def sigma_location(source: SigmaRuleLocation | None) -> str | None:
    """`file:line:col` (or `file`) from a pySigma SigmaRuleLocation, None if there is none."""
    if source is None:
        return None
    location = str(source.path)
    if source.line is not None:
        location += f":{source.line}"
        if source.char is not None:
            location += f":{source.char}"
    return location


def rule_error(message: str, rule: SigmaRuleBase) -> RuleError:
    """A RuleError located at the pySigma rule's source, when it has one."""
    return RuleError(message, location=sigma_location(rule.source))
