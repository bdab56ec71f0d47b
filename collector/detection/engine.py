"""The detection engine: Sigma rules loaded once, compiled, indexed, run over event batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from canhgac.errors import RuleError
from canhgac.fields import (
    HEADER_COPY_PATHS,
    Fields,
    FieldsWriter,
    event_fields,
    fields_reader_then,
    fields_writer,
)
from canhgac.v1 import alert_pb2, events_pb2
from collector.detection.alerts import AlertTemplate
from collector.detection.base import LoadResult, Predicate, RuleLoadError
from collector.detection.compiler import compile_rule
from collector.detection.correlation import (
    DEFAULT_MAX_GROUPS,
    AnyCorrelation,
    KeyCache,
    build_correlation,
    referenced_rules,
)
from collector.detection.index import Anchor, Anchors, RuleIndex, anchors, proven_by_index
from collector.detection.pipeline import canhgac_pipeline
from collector.detection.ruleset import read_rule_files, reference_key, rule_id

STATE_VERSION: Final = 1


@dataclass(eq=False)
class _Correlation:
    rule_id: str
    template: AlertTemplate
    state: AnyCorrelation
    timespan_s: int


@dataclass
class StateImport:
    """What `import_state` did, by correlation rule id (for the collector's log)."""

    restored: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # the rule changed, or unreadable state
    unknown: list[str] = field(default_factory=list)  # no such correlation is loaded now


# The correlations one event feeds, each with the reference keys of the rules it matched.
_Feeds = tuple[tuple[_Correlation, tuple[str, ...]], ...]


@dataclass(eq=False, slots=True)
class _BaseRule:
    template: AlertTemplate
    predicate: Predicate
    categories: frozenset[str] | None
    fields: frozenset[str]  # the paths the predicate reads
    alerts: bool  # alert per matching event (not only feeding correlations)
    # Field values one of which every matching event has (index.py); None: evaluate always.
    anchors: Anchors | None = None
    # The correlations this rule feeds, each with the reference key it uses for this rule.
    feeds: tuple[tuple[_Correlation, str], ...] = ()
    # The same grouped by correlation, as process() hands them over when this rule is the only
    # one of the event's to feed (set with `feeds`, see _group_feeds).
    feeds_alone: _Feeds = ()


class DetectionEngine:
    """Runs a set of Sigma rules over batches of events and returns the alerts they raise.

    `load()` reads rule files and directories, compiles every rule and replaces the active set
    (correlation state starts empty); a rule that cannot be read, parsed, mapped or compiled is
    reported in the LoadResult and skipped, never fatal. `export_state()`/`import_state()` carry
    the correlation windows across a restart. `process()` evaluates only the base rules indexed
    under the event's `event.category` (plus those without a category constraint), feeds
    correlations and builds the alerts.

    Fields: most of an event's fifty-odd paths are read by no rule, and computing them was the
    largest single cost per event, so each category bucket computes only the paths its rules'
    predicates and the correlations they feed read (`fields_reader_then`, `fields_read()`), except
    the header paths only correlations read (event.id, agent.id, host.name), added when a rule
    feeds one; an event that raises an alert gets all of its fields then, for the alert's
    summary.
    `full_fields=True` computes every path up front and runs the rules' plain predicates (not
    those specialised to their one category, see CompiledRule): the reference the fast engine
    is tested against.

    A base rule alerts on every matching event unless a correlation references it; then it only
    feeds the correlation (unless that correlation says `generate: true`). Not thread-safe: one
    engine belongs to one detection worker.
    """

    def __init__(
        self,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        max_groups: int = DEFAULT_MAX_GROUPS,
        full_fields: bool = False,
    ) -> None:
        self._clock_ns = clock_ns
        self._max_groups = max_groups
        self._full_fields = full_fields
        self._by_category: dict[str, _Bucket] = {}
        self._uncategorised = self._bucket(())
        # event.category as sent -> its bucket, so most events skip the lower-casing.
        self._dispatch: dict[str, _Bucket] = {}
        self._correlations: tuple[_Correlation, ...] = ()
        self._closing: tuple[_Correlation, ...] = ()
        self._rule_count = 0  # need advance() on every event
        # _group_feeds of several rules one event matched, by those rules: the same few sets of
        # rules (an auth failure: a login rule and a guessing rule) match event after event.
        self._grouped: dict[tuple[_BaseRule, ...], _Feeds] = {}

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[Path | str],
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        max_groups: int = DEFAULT_MAX_GROUPS,
        full_fields: bool = False,
    ) -> tuple[DetectionEngine, LoadResult]:
        """A new engine with the rules under `paths` loaded, and what loading found."""
        engine = cls(clock_ns=clock_ns, max_groups=max_groups, full_fields=full_fields)
        return engine, engine.load(paths)

    @property
    def correlations(self) -> tuple[AnyCorrelation, ...]:
        """The live correlation states (for metrics: evictions, late, suppressed ...)."""
        return tuple(c.state for c in self._correlations)

    @property
    def correlations_by_rule(self) -> dict[str, AnyCorrelation]:
        """The live correlation states by correlation rule id (metric labels)."""
        return {c.rule_id: c.state for c in self._correlations}

    def export_state(self) -> dict[str, Any]:
        """Every correlation's window state, JSON-able, keyed by correlation rule id.

        `{"version": 1, "correlations": {rule_id: snapshot}}`; each snapshot carries a
        fingerprint of its rule's definition (see WindowCorrelation.snapshot).
        """
        return {
            "version": STATE_VERSION,
            "correlations": {
                c.rule_id: c.state.snapshot() for c in self._correlations if c.rule_id
            },
        }

    def import_state(self, data: Mapping[str, Any]) -> StateImport:
        """Restore what `export_state` wrote, e.g. after a restart, into the loaded rules.

        A rule whose definition changed since (timespan, group-by, condition ...) or whose
        state cannot be read starts empty instead; state of rules no longer loaded is ignored.
        Call it after `load()` and before the first `process()`.
        """
        result = StateImport()
        snapshots = data.get("correlations") if data.get("version") == STATE_VERSION else None
        if not isinstance(snapshots, Mapping):
            result.dropped = [c.rule_id for c in self._correlations]
            return result
        by_rule = {c.rule_id: c for c in self._correlations}
        for rule, snapshot in snapshots.items():
            corr = by_rule.get(rule)
            if corr is None:
                result.unknown.append(rule)
                continue
            try:
                restored = isinstance(snapshot, Mapping) and corr.state.restore(snapshot)
            except ValueError:
                restored = False
            (result.restored if restored else result.dropped).append(rule)
        return result

    def load(self, paths: Sequence[Path | str]) -> LoadResult:
        """Replace the active rules with those under `paths`; report what could not load."""
        files = read_rule_files(paths)
        errors = list(files.errors)
        pipeline = canhgac_pipeline()
        bases: dict[str, tuple[Path, SigmaRule]] = {}
        correlations: list[tuple[Path, SigmaCorrelationRule]] = []
        correlation_names: set[str] = set()
        for path, rule in files.rules:
            if isinstance(rule, SigmaCorrelationRule):
                correlations.append((path, rule))
                correlation_names.update(n for n in (rule_id(rule), rule.name) if n)
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
                found = _rule_anchors(rule)
                # The index's exact-value look-up proves a test the rule would repeat; not for
                # the full-field engine, the reference the fast one is compared with.
                proven = None if self._full_fields else proven_by_index(found)
                program = compile_rule(rule, proven=proven)
                template = AlertTemplate.from_sigma(rule)
            except (RuleError, SigmaError) as exc:
                errors.append(RuleLoadError(str(path), rule_id(rule), _reason(exc)))
                continue
            alerts = not (names & referenced) or bool(names & generating)
            # A rule with one category is indexed under it alone: its events are of that category.
            predicate, used = program.predicate, program.fields
            if program.in_category is not None and not self._full_fields:
                predicate = program.in_category
                used = program.in_category_fields or frozenset()
            compiled[id(rule)] = _BaseRule(
                template,
                predicate,
                program.categories,
                used,
                alerts,
                found,
            )

        feeds: dict[int, list[tuple[_Correlation, str]]] = {}
        active: list[_Correlation] = []
        for path, corr_rule in correlations:
            try:
                refs = referenced_rules(corr_rule)
                if not refs:
                    raise RuleError("correlation references no rules")
                for ref in refs:
                    if ref in correlation_names and ref not in bases:
                        raise RuleError(f"references correlation '{ref}'; chains are unsupported")
                pipeline.apply(corr_rule)
                state = build_correlation(corr_rule, max_groups=self._max_groups)
                targets = [self._target(ref, bases, compiled) for ref in refs]
                template = AlertTemplate.from_sigma(corr_rule, fallback=targets[0].template)
            except (RuleError, SigmaError) as exc:
                errors.append(RuleLoadError(str(path), rule_id(corr_rule), _reason(exc)))
                continue
            timespan_s = int(corr_rule.timespan.seconds)
            correlation = _Correlation(rule_id(corr_rule), template, state, timespan_s)
            active.append(correlation)
            for ref, target in zip(refs, targets, strict=True):
                feeds.setdefault(id(target), []).append((correlation, ref))

        for base in compiled.values():
            base.feeds = tuple(feeds.get(id(base), ()))
            base.feeds_alone = _group_feeds([base])
        live = [b for b in compiled.values() if b.alerts or b.feeds]
        self._index(live)
        self._grouped = {}
        self._correlations = tuple(active)
        self._closing = tuple(c for c in active if not c.state.eager)
        self._rule_count = len(live) + len(active)
        return LoadResult(loaded=self._rule_count, errors=errors)

    @property
    def rule_count(self) -> int:
        """Rules active since the last load(): base rules that alert or feed, correlations."""
        return self._rule_count

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
        # Each bucket already holds the category-free rules, so process() does one lookup;
        # within a bucket, an event meets only the rules its field values can match.
        self._by_category = {
            c: self._bucket((*rs, *uncategorised), _USUAL_KINDS.get(c, ()))
            for c, rs in by_category.items()
        }
        self._uncategorised = self._bucket(uncategorised)
        self._dispatch = {}

    def _bucket(self, rules: Sequence[_BaseRule], kinds: Sequence[str] = ()) -> _Bucket:
        index = RuleIndex(rules, _anchors_of)
        if self._full_fields:
            find = index.find

            def read_all(ev: events_pb2.Event) -> tuple[Fields, Sequence[_BaseRule]]:
                fields = event_fields(ev)
                return fields, find(fields)

            return _Bucket(index, read_all, None)
        # Read up front even for events that feed no correlation: a second, later read of the
        # message for those that do cost more than it saved (callgrind, bench/detection.py).
        # Except the header paths only correlations read (event.id, agent.id, host.name): those
        # are plain attributes of the event, read when a rule feeds a correlation (`late`).
        wanted: set[str] = set()
        correlations: set[str] = set()
        for rule in rules:
            wanted |= rule.fields
            wanted.update(a.field for a in rule.anchors or ())
            for corr, _ in rule.feeds:
                correlations |= corr.state.fields_read()
        late = (correlations - wanted) & HEADER_COPY_PATHS
        wanted |= correlations - late
        # The reader hands the fields to the index's find for the event's payload kind.
        read = fields_reader_then(wanted, index.find_among, first=kinds)
        return _Bucket(index, read, fields_writer(late) if late else None)

    def process(self, events: Sequence[events_pb2.Event]) -> list[alert_pb2.Alert]:
        """Evaluate every rule that can match each event, in order; return the alerts raised."""
        alerts: list[alert_pb2.Alert] = []
        dispatch = self._dispatch
        closing, clock_ns, full_fields = self._closing, self._clock_ns, self._full_fields
        grouped = self._grouped
        now: int | None = None
        for ev in events:
            if closing:
                for corr in closing:
                    for hit in corr.state.advance(ev.agent_id, ev.time_ns):
                        now = now or clock_ns()
                        alerts.append(corr.template.window_alert(hit, corr.timespan_s, now))
            category = ev.category
            bucket = dispatch.get(category)
            if bucket is None:
                bucket = self._dispatch_miss(category)
            if not bucket.size:
                continue
            fields, candidates = bucket.read(ev)
            # An alert's summary may name any field: all of them, computed at the first alert.
            full: Mapping[str, Any] | None = fields if full_fields else None
            feeder: _BaseRule | None = None  # the first rule to feed a correlation ...
            feeders: list[_BaseRule] | None = None  # ... and all of them when there are more
            for rule in candidates:
                if not rule.predicate(fields):
                    continue
                if rule.alerts:
                    if full is None:
                        full = event_fields(ev)
                    now = now or clock_ns()
                    alerts.append(rule.template.event_alert(ev, full, now))
                if rule.feeds:
                    if feeder is None:
                        feeder = rule
                    elif feeders is None:
                        feeders = [feeder, rule]
                    else:
                        feeders.append(rule)
            if feeder is None:
                continue
            # Each correlation gets the event once, with every referenced rule it matched:
            # counting kinds count it once, temporal kinds record it for each of those rules.
            late = bucket.late
            if late is not None:
                late(ev, fields)
            if feeders is None:
                fed = feeder.feeds_alone
            else:
                matched = tuple(feeders)
                found = grouped.get(matched)
                fed = found if found is not None else self._remember_feeds(matched)
            # The event's group keys, built once for the correlations that group alike; its
            # time read once (a message attribute read costs more than a local).
            keys: KeyCache | None = {} if len(fed) > 1 else None
            time_ns = ev.time_ns
            for corr, refs in fed:
                for hit in corr.state.feed(time_ns, fields, refs, keys):
                    now = now or clock_ns()
                    alerts.append(corr.template.window_alert(hit, corr.timespan_s, now))
        return alerts

    def _remember_feeds(self, rules: tuple[_BaseRule, ...]) -> _Feeds:
        if len(self._grouped) >= _GROUPED_SIZE:  # combinations of rules: a bound, in case
            self._grouped.clear()
        fed = self._grouped[rules] = _group_feeds(rules)
        return fed

    def _dispatch_miss(self, category: str) -> _Bucket:
        bucket = self._by_category.get(category.lower(), self._uncategorised)
        if len(self._dispatch) >= _DISPATCH_SIZE:  # spellings of categories: a bound, in case
            self._dispatch.clear()
        self._dispatch[category] = bucket
        return bucket


_DISPATCH_SIZE: Final = 256
_GROUPED_SIZE: Final = 1024
# The payload kinds the events of a category usually carry: its bucket's reader tests for these
# first (only an order: any kind is read right).
_USUAL_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "process": ("process",),
    "authentication": ("auth",),
    "iam": ("auth",),
    "file": ("file",),
    "network": ("socket", "flow", "connection_attempts", "dns"),
}


def _group_feeds(rules: Sequence[_BaseRule]) -> _Feeds:
    """The correlations `rules` feed, each once, with every reference key of those rules in
    their order (what one event that matched all of `rules` hands each correlation)."""
    grouped: dict[_Correlation, list[str]] = {}
    for rule in rules:
        for corr, ref in rule.feeds:
            grouped.setdefault(corr, []).append(ref)
    return tuple((corr, tuple(refs)) for corr, refs in grouped.items())


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The rules of one category: their index, and the reader of the fields they use."""

    index: RuleIndex[_BaseRule]
    # The paths the rules' predicates and the correlations they feed read, and the rules those
    # fields make candidates (index.find).
    read: Callable[[events_pb2.Event], tuple[Fields, Sequence[_BaseRule]]]
    # The header paths only correlations read, added when a rule feeds one; None: no such path.
    late: FieldsWriter | None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.index))


def _anchors_of(rule: _BaseRule) -> Anchors | None:
    return rule.anchors


def _rule_anchors(rule: SigmaRule) -> Anchors | None:
    """The anchors of all the rule's conditions (any may match), None if one has none."""
    union: set[Anchor] = set()
    for condition in rule.detection.parsed_condition:
        found = anchors(condition.parsed)
        if found is None:
            return None
        union |= found
    return frozenset(union)


def _reason(exc: Exception) -> str:
    if isinstance(exc, RuleError):
        return exc.message
    return str(exc.args[0]) if exc.args else type(exc).__name__
