"""`rules lint`: load rules as the collector would, then check what loading cannot.

Each check is a small validator class with one method, `check(rule) -> issues`, registered by id
in VALIDATORS (a test checks every validator is registered). Loading problems (YAML, Sigma
schema, unsupported construct, unknown field, broken reference) come first, as errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from collector.detection.alerts import CATEGORY_ATTRIBUTE
from collector.detection.categories import INCIDENT_CATEGORIES
from collector.detection.engine import DetectionEngine
from collector.detection.goldens import golden_path
from collector.detection.ruleset import read_rule_files, rule_id

Severity = Literal["error", "warning"]
AnyRule = SigmaRule | SigmaCorrelationRule


@dataclass(frozen=True)
class LintIssue:
    path: str
    rule_id: str
    check: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"{self.path} [{self.rule_id}]" if self.rule_id else self.path
        return f"{self.severity}: {where}: {self.check}: {self.message}"


class RuleValidator:
    """One lint check. `check` returns (severity, message) pairs for one rule."""

    check_id: ClassVar[str]

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        raise NotImplementedError


class DescriptionValidator(RuleValidator):
    check_id = "description"

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        text = (rule.description or "").strip()
        if not text:
            return [("error", "no description: say what the rule detects and why its values")]
        if isinstance(rule, SigmaCorrelationRule) and len(text) < 80:
            return [("warning", "a correlation should justify its threshold and window")]
        return []


class LevelValidator(RuleValidator):
    check_id = "level"

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        return [] if rule.level is not None else [("warning", "no level: alerts will be medium")]


class IncidentCategoryValidator(RuleValidator):
    check_id = "incident_category"

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        category = (rule.custom_attributes or {}).get(CATEGORY_ATTRIBUTE)
        if category is None:
            return [("warning", f"no {CATEGORY_ATTRIBUTE}: derived from ATT&CK tags or 'other'")]
        if category not in INCIDENT_CATEGORIES:
            known = ", ".join(sorted(INCIDENT_CATEGORIES))
            return [("error", f"{CATEGORY_ATTRIBUTE} {category!r} is not one of: {known}")]
        return []


class AttackTagValidator(RuleValidator):
    check_id = "attack_tags"

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        if any(str(t.namespace).lower() == "attack" for t in rule.tags):
            return []
        return [("warning", "no attack.* tag: the alert carries no ATT&CK technique")]


class GoldenEventsValidator(RuleValidator):
    check_id = "golden_events"

    def check(self, rule: AnyRule, path: Path) -> list[tuple[Severity, str]]:
        status = rule.status.name.lower() if rule.status is not None else ""
        if status in ("stable", "test") and not golden_path(path).exists():
            return [("error", f"status {status} without golden events ({golden_path(path).name})")]
        return []


VALIDATORS: Final[Mapping[str, type[RuleValidator]]] = {
    v.check_id: v
    for v in (
        DescriptionValidator,
        LevelValidator,
        IncidentCategoryValidator,
        AttackTagValidator,
        GoldenEventsValidator,
    )
}


def lint_paths(paths: Iterable[Path | str]) -> list[LintIssue]:
    """Every loading error and lint issue of the rules under `paths`."""
    paths = list(paths)
    issues = [
        LintIssue(e.path, e.rule_id, "load", "error", e.message)
        for e in DetectionEngine().load(paths).errors
    ]
    validators = [v() for v in VALIDATORS.values()]
    for path, rule in read_rule_files(paths).rules:
        for validator in validators:
            for severity, message in validator.check(rule, path):
                issues.append(
                    LintIssue(str(path), rule_id(rule), validator.check_id, severity, message)
                )
    return issues
