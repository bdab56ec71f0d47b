"""Golden event files: each shipped rule's positive and negative cases, run by `rules test`.

A rule file `NAME.yml` has its cases beside it in `NAME.golden.yml` (never read as rules):

    cases:
      - name: five failures from one address within a minute
        expect: {canhgac_ssh_password_guessing: 1}   # rule name or id -> alerts it must raise
        events:
          - event: {category: authentication, action: ssh_login, outcome: OUTCOME_FAILURE,
                    auth: {user: root, source_ip: 203.0.113.7, method: password}}
            at: 0s          # offset from the case's start (default 0s)
            repeat: 5       # the same event this many times (default 1) ...
            every: 2s       # ... this far apart (default 1s)
      - name: four failures are not enough
        expect: {canhgac_ssh_password_guessing: 0}
        events: [...]
    also: [../other_rules.yml]   # further rule files the rules under test refer to (optional)

`event` is a `canhgac.v1.Event` in protobuf's JSON mapping; the header fields a case does not
set are filled in (`id`, `time_ns` from `at`, `agent_id` "golden-agent", `host` "golden-host").
Every case runs on a fresh engine loaded with the rule file (and `also`), so correlation state
never leaks between cases; only the rules named in `expect` are counted.

`check_library()` also enforces the library's rule: every rule whose status is `stable` or
`test` and that raises alerts has at least one positive case (expects >= 1) and one negative
case (expects 0); a base rule that only feeds correlations is covered through them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from canhgac.errors import RuleError
from canhgac.ids import new_id
from canhgac.v1 import events_pb2
from collector.detection.engine import DetectionEngine
from collector.detection.ruleset import GOLDEN_SUFFIXES, find_rule_files, read_rule_files, rule_id

CASE_START_NS: Final = 1_795_350_000_000_000_000  # 2026-11-22T12:20:00Z
_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d)")
_UNIT_NS: Final = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
_ALERTING_STATUSES: Final = frozenset({"stable", "test"})


def duration_ns(text: str) -> int:
    """`90s`, `5m`, `1.5h`, `250ms` as nanoseconds; ValueError otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 2h")
    return int(float(m["n"]) * _UNIT_NS[m["unit"]])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldenEvent(_Strict):
    event: dict[str, Any]
    at: str = "0s"
    repeat: int = Field(1, ge=1, le=100_000)
    every: str = "1s"

    @field_validator("at", "every")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_ns(value)
        return value


class GoldenCase(_Strict):
    name: str
    expect: dict[str, int]
    events: list[GoldenEvent] = Field(min_length=1)


class GoldenFile(_Strict):
    cases: list[GoldenCase] = Field(min_length=1)
    also: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class CaseResult:
    path: Path
    case: str
    rule: str
    expected: int
    got: int

    @property
    def ok(self) -> bool:
        return self.expected == self.got

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        counts = f"expected {self.expected}, got {self.got}"
        return f"{verdict}: {self.path} [{self.case}] {self.rule}: {counts}"


@dataclass
class LibraryReport:
    """What `rules test` found: each case's result and every problem that fails the run."""

    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)


def golden_path(rule_file: Path) -> Path:
    return rule_file.with_name(rule_file.stem + ".golden.yml")


def load_golden(path: Path) -> GoldenFile:
    """Parse a golden file; RuleError located at the file for any problem."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
        return GoldenFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"cannot read golden file: {exc}", location=str(path)) from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise RuleError(f"invalid golden file: {problems}", location=str(path)) from exc


def case_events(case: GoldenCase, location: str) -> list[events_pb2.Event]:
    """The case's events, in time order, with the header filled in."""
    out: list[events_pb2.Event] = []
    for n, spec in enumerate(case.events):
        start, step = CASE_START_NS + duration_ns(spec.at), duration_ns(spec.every)
        for i in range(spec.repeat):
            ev = events_pb2.Event()
            try:
                json_format.ParseDict(spec.event, ev)
            except json_format.ParseError as exc:
                raise RuleError(f"case {case.name!r} event {n}: {exc}", location=location) from exc
            ev.time_ns = ev.time_ns or start + i * step
            ev.created_ns = ev.created_ns or ev.time_ns
            ev.id = ev.id or new_id(ev.time_ns)
            ev.agent_id = ev.agent_id or "golden-agent"
            ev.host = ev.host or "golden-host"
            out.append(ev)
    out.sort(key=lambda e: e.time_ns)
    return out


def run_golden_file(rule_file: Path, golden: Path) -> tuple[list[CaseResult], list[str]]:
    """Run every case of one golden file; (results, problems that stop it)."""
    try:
        spec = load_golden(golden)
    except RuleError as exc:
        return [], [str(exc)]
    rule_files = [rule_file, *(golden.parent / extra for extra in spec.also)]
    results: list[CaseResult] = []
    problems: list[str] = []
    for case in spec.cases:
        engine = DetectionEngine(clock_ns=lambda: CASE_START_NS)
        loaded = engine.load(rule_files)
        if loaded.errors:
            problems.extend(f"{golden}: rule did not load: {e}" for e in loaded.errors)
            return results, problems
        try:
            events = case_events(case, str(golden))
        except RuleError as exc:
            problems.append(str(exc))
            continue
        counts = Counter(a.rule_id for a in engine.process(events))
        counts.update(_names_to_ids(rule_files, counts))
        for rule, expected in case.expect.items():
            results.append(CaseResult(golden, case.name, rule, expected, counts.get(rule, 0)))
    return results, problems


def _names_to_ids(rule_files: Sequence[Path], counts: Counter[str]) -> Counter[str]:
    """Alerts carry the rule id; golden files may name rules by `name`: count those too."""
    extra: Counter[str] = Counter()
    for _, rule in read_rule_files(rule_files).rules:
        if rule.name and rule.name != rule_id(rule) and rule_id(rule) in counts:
            extra[rule.name] = counts[rule_id(rule)]
    return extra


def check_library(paths: Iterable[Path | str]) -> LibraryReport:
    """Run the golden files of every rule file under `paths` and check the coverage rule."""
    report = LibraryReport()
    rule_files, missing = find_rule_files(paths)
    report.problems.extend(str(e) for e in missing)
    for rule_file in rule_files:
        golden = golden_path(rule_file)
        if golden.exists():
            results, problems = run_golden_file(rule_file, golden)
            report.results.extend(results)
            report.problems.extend(problems)
        report.problems.extend(_coverage_problems(rule_file, golden, report.results))
    return report


def _coverage_problems(rule_file: Path, golden: Path, results: Sequence[CaseResult]) -> list[str]:
    parsed = read_rule_files([rule_file])
    referenced = {
        str(ref.reference)
        for _, rule in parsed.rules
        for ref in (getattr(rule, "rules", None) or ())
    }
    problems = []
    mine = [r for r in results if r.path == golden]
    for _, rule in parsed.rules:
        status = rule.status.name.lower() if rule.status is not None else ""
        names = {rule_id(rule), rule.name or ""} - {""}
        if status not in _ALERTING_STATUSES or names & referenced:
            continue  # experimental, or covered through the correlation it feeds
        cases = [r for r in mine if r.rule in names]
        if not any(r.expected >= 1 for r in cases) or not any(r.expected == 0 for r in cases):
            problems.append(
                f"{rule_file} [{rule_id(rule)}]: status {status} needs golden events in "
                f"{golden.name}: at least one positive case (expect >= 1) and one negative "
                "case (expect 0)"
            )
    return problems


__all__ = [
    "GOLDEN_SUFFIXES",
    "CaseResult",
    "GoldenCase",
    "GoldenFile",
    "LibraryReport",
    "case_events",
    "check_library",
    "duration_ns",
    "golden_path",
    "load_golden",
    "run_golden_file",
]
