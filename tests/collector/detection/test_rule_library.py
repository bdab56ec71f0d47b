"""The shipped rule library: every rule loads, and every golden case gives its expected count."""

from __future__ import annotations

from pathlib import Path

from collector.detection.goldens import check_library
from collector.detection.lint import VALIDATORS, RuleValidator, lint_paths

RULES = Path(__file__).resolve().parents[3] / "rules"


def test_every_golden_case_passes_and_every_tested_rule_has_positive_and_negative_cases() -> None:
    report = check_library([RULES])
    failures = [str(r) for r in report.results if not r.ok]
    assert report.problems == []
    assert failures == []
    assert len({r.path for r in report.results}) >= 1


def test_the_library_lints_without_errors() -> None:
    errors = [str(i) for i in lint_paths([RULES]) if i.severity == "error"]
    assert errors == []


def test_every_validator_is_registered() -> None:
    subclasses = set(RuleValidator.__subclasses__())
    assert subclasses == set(VALIDATORS.values())
    assert all(VALIDATORS[v.check_id] is v for v in subclasses)
