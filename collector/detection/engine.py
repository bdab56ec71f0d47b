"""The detection engine: Sigma rules loaded once, compiled, indexed, run over event batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from canhgac.errors import RuleError
from canhgac.fields import event_fields
from canhgac.v1 import alert_pb2, events_pb2
from collector.detection.alerts import AlertTemplate
from collector.detection.base import LoadResult, Predicate, RuleLoadError
from collector.detection.compiler import compile_rule
from collector.detection.correlation import (
    DEFAULT_MAX_GROUPS,
    EventCountCorrelation,
    build_correlation,
)
from collector.detection.pipeline import canhgac_pipeline
from collector.detection.ruleset import read_rule_files, reference_key, rule_id


@dataclass(eq=False)
class _Correlation:
    template: AlertTemplate
    state: EventCountCorrelation
    timespan_s: int


@dataclass(eq=False)
class _BaseRule:
    template: AlertTemplate
    predicate: Predicate
    categories: frozenset[str] | None
    alerts: bool  # alert per matching event (not only feeding correlations)
    feeds: tuple[_Correlation, ...] = ()


class DetectionEngine:
    """Runs a set of Sigma rules over batches of events and returns the alerts they raise.

    `load()` reads rule files and directories, compiles every rule and replaces the active set
    (correlation state starts empty); a rule that cannot be read, parsed, mapped or compiled is
    reported in the LoadResult and skipped, never fatal. `process()` computes each event's
    fields once, evaluates only the base rules indexed under the event's `event.category` (plus
    those without a category constraint), feeds correlations and builds the alerts.

    A base rule alerts on every matching event unless a correlation references it; then it only
    feeds the correlation (unless that correlation says `generate: true`). Not thread-safe: one
    engine belongs to one detection worker.
    """

    def __init__(
        self,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> None:
        self._clock_ns = clock_ns
        self._max_groups = max_groups
        self._by_category: dict[str, tuple[_BaseRule, ...]] = {}
        self._uncategorised: tuple[_BaseRule, ...] = ()
        self._correlations: tuple[_Correlation, ...] = ()
        self._closing: tuple[_Correlation, ...] = ()  # need advance() on every event

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[Path | str],
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> tuple[DetectionEngine, LoadResult]:
        """A new engine with the rules under `paths` loaded, and what loading found."""
        engine = cls(clock_ns=clock_ns, max_groups=max_groups)
        return engine, engine.load(paths)

    @property
    def correlations(self) -> tuple[EventCountCorrelation, ...]:
        """The live correlation states (for metrics: evictions, late, suppressed ...)."""
        return tuple(c.state for c in self._correlations)

    def load(self, paths: Sequence[Path | str]) -> LoadResult:
        """Replace the active rules with those under `paths`; report what could not load."""
        files = read_rule_files(paths)
        errors = list(files.errors)
        pipeline = canhgac_pipeline()
        bases: dict[str, tuple[Path, SigmaRule]] = {}
        correlations: list[tuple[Path, SigmaCorrelationRule]] = []
        for path, rule in files.rules:
            if isinstance(rule, SigmaCorrelationRule):
                correlations.append((path, rule))
            else:
                bases[rule_id(rule)] = (path, rule)
                if rule.name:
                    bases.setdefault(rule.name, (path, rule))
        references = [
            (c, reference_key(r.reference)) for _, c in correlations for r in c.rules or ()
        ]
        referenced = {ref for _, ref in references}
        generating = {ref for c, ref in references if c.generate}

        compiled: dict[int, _BaseRule] = {}
        for path, rule in {id(r): (p, r) for p, r in bases.values()}.values():
            names = {rule_id(rule), rule.name or rule_id(rule)}
            try:
                pipeline.apply(rule)
                program = compile_rule(rule)
                template = AlertTemplate.from_sigma(rule)
            except (RuleError, SigmaError) as exc:
                errors.append(RuleLoadError(str(path), rule_id(rule), _reason(exc)))
                continue
            alerts = not (names & referenced) or bool(names & generating)
            compiled[id(rule)] = _BaseRule(template, program.predicate, program.categories, alerts)

        feeds: dict[int, list[_Correlation]] = {}
        active: list[_Correlation] = []
        for path, corr_rule in correlations:
            try:
                pipeline.apply(corr_rule)
                state = build_correlation(corr_rule, max_groups=self._max_groups)
                refs = [reference_key(ref.reference) for ref in corr_rule.rules or ()]
                if not refs:
                    raise RuleError("correlation references no rules")
                targets = [self._target(ref, bases, compiled) for ref in refs]
                template = AlertTemplate.from_sigma(corr_rule, fallback=targets[0].template)
            except (RuleError, SigmaError) as exc:
                errors.append(RuleLoadError(str(path), rule_id(corr_rule), _reason(exc)))
                continue
            correlation = _Correlation(template, state, int(corr_rule.timespan.seconds))
            active.append(correlation)
            for target in targets:
                feeds.setdefault(id(target), []).append(correlation)

        for base in compiled.values():
            base.feeds = tuple(feeds.get(id(base), ()))
        live = [b for b in compiled.values() if b.alerts or b.feeds]
        self._index(live)
        self._correlations = tuple(active)
        self._closing = tuple(c for c in active if not c.state.eager)
        return LoadResult(loaded=len(live) + len(active), errors=errors)

    @staticmethod
    def _target(
        reference: str, bases: dict[str, tuple[Path, SigmaRule]], compiled: dict[int, _BaseRule]
    ) -> _BaseRule:
        entry = bases.get(reference)
        if entry is None:
            raise RuleError(f"references unknown base rule '{reference}'")
        base = compiled.get(id(entry[1]))
        if base is None:
            raise RuleError(f"references base rule '{reference}', which did not load")
        return base

    def _index(self, rules: Sequence[_BaseRule]) -> None:
        uncategorised = tuple(r for r in rules if r.categories is None)
        by_category: dict[str, list[_BaseRule]] = {}
        for rule in rules:
            for category in rule.categories or ():
                by_category.setdefault(category, []).append(rule)
        # Each bucket already holds the category-free rules, so process() does one lookup.
        self._by_category = {c: (*rs, *uncategorised) for c, rs in by_category.items()}
        self._uncategorised = uncategorised

    def process(self, events: Sequence[events_pb2.Event]) -> list[alert_pb2.Alert]:
        """Evaluate every rule that can match each event, in order; return the alerts raised."""
        alerts: list[alert_pb2.Alert] = []
        by_category, uncategorised = self._by_category, self._uncategorised
        now: int | None = None
        for ev in events:
            if self._closing:
                for corr in self._closing:
                    for hit in corr.state.advance(ev.agent_id, ev.time_ns):
                        now = now or self._clock_ns()
                        alerts.append(corr.template.window_alert(hit, corr.timespan_s, now))
            rules = by_category.get(ev.category.lower(), uncategorised)
            if not rules:
                continue
            fields = event_fields(ev)
            fed: list[_Correlation] = []
            for rule in rules:
                if not rule.predicate(fields):
                    continue
                if rule.alerts:
                    now = now or self._clock_ns()
                    alerts.append(rule.template.event_alert(ev, fields, now))
                for corr in rule.feeds:
                    if corr not in fed:  # an event matching two of its base rules counts once
                        fed.append(corr)
            for corr in fed:
                for hit in corr.state.feed(ev.time_ns, fields):
                    now = now or self._clock_ns()
                    alerts.append(corr.template.window_alert(hit, corr.timespan_s, now))
        return alerts


def _reason(exc: Exception) -> str:
    if isinstance(exc, RuleError):
        return exc.message
    return str(exc.args[0]) if exc.args else type(exc).__name__
