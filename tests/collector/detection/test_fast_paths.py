"""The detection engine's fast paths return what the plain computation returns.

* RuleIndex.candidates (one probe per field, remembered values, pre-merged rule groups) against
  the index's definition written out plainly: a rule is a candidate when it has no anchors or
  one of its anchors holds for the event.
* A list of two plain values on one field (one set look-up) against its values one by one.
* Case-insensitive string tests written out for str values (compiler._folded) against the
  generic closure over a test function (compiler._on_text); several substrings of one field
  tested in one closure against each substring's own leaf.
* The engine's category dispatch (the category as sent, remembered), the rules feeding a
  correlation (alone or several on one event) and the header fields only correlations read
  (read late) against the engine that computes every field up front.
"""

from __future__ import annotations

import random
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule
from sigma.types import SigmaCasedString, SigmaString

from canhgac.v1 import alert_pb2
from canhgac.v1 import events_pb2 as pb
from collector.detection import index as index_module
from collector.detection.compiler import (
    _affix_test,
    _folded,
    _on_text,
    _TreeCompiler,
    compile_rule,
)
from collector.detection.engine import DetectionEngine
from collector.detection.index import Anchor, Anchors, RuleIndex
from collector.detection.matchers import string_test, text
from collector.detection.pipeline import canhgac_pipeline

# --- the index ---------------------------------------------------------------------------------

NAMES = ["process.command_line", "process.executable", "destination.port", "event.type"]
LETTERS = "abAB/1"


@st.composite
def anchor_sets(draw: st.DrawFn) -> Anchors | None:
    if draw(st.integers(0, 5)) == 0:
        return None  # a rule evaluated on every event
    found = set()
    for _ in range(draw(st.integers(1, 3))):
        literal = draw(st.text(LETTERS.lower(), min_size=1, max_size=3))
        found.add(Anchor(draw(st.sampled_from(NAMES)), literal, draw(st.booleans())))
    return frozenset(found)


values = st.one_of(
    st.text(LETTERS, max_size=5),
    st.integers(0, 12),
    st.booleans(),
    st.lists(st.text(LETTERS, max_size=4), max_size=3),
)


@st.composite
def field_dicts(draw: st.DrawFn) -> dict[str, Any]:
    return {name: draw(values) for name in NAMES if draw(st.booleans())}


def _holds(anchor: Anchor, value: Any) -> bool:
    items = value if type(value) is list else [value]
    for item in items:
        folded = text(item).lower()
        if folded == anchor.literal if anchor.exact else anchor.literal in folded:
            return True
    return False


def _reference(rules: Sequence[tuple[int, Anchors | None]], fields: dict[str, Any]) -> list[Any]:
    out = []
    for rule in rules:
        found = rule[1] or frozenset()
        # No anchors, or one on a weak field (event.type): not indexed, always a candidate.
        unindexed = not found or any(a.field == "event.type" for a in found)
        if unindexed or any(a.field in fields and _holds(a, fields[a.field]) for a in found):
            out.append(rule)
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(anchor_sets(), min_size=1, max_size=8),
    st.lists(field_dicts(), min_size=1, max_size=12),
    st.integers(1, 4),
)
def test_candidates_are_the_rules_an_anchor_holds_for(
    anchor_lists: list[Anchors | None], events: list[dict[str, Any]], memo_size: int
) -> None:
    rules = list(enumerate(anchor_lists))
    # A tiny memo, so that the events (each seen twice) meet remembered, forgotten and new values.
    with mock.patch.object(index_module, "MEMO_SIZE", memo_size):
        index = RuleIndex(rules, lambda rule: rule[1])
        for fields in events + events:
            expected = _reference(rules, fields)
            assert list(index.candidates(fields)) == expected, fields
            assert list(index.find(fields)) == expected, fields  # the generated one


def test_a_remembered_value_is_not_confused_with_an_equal_one_of_another_type() -> None:
    rules = [(0, frozenset({Anchor("destination.port", "1", True)}))]
    index = RuleIndex(rules, lambda rule: rule[1])
    assert list(index.candidates({"destination.port": 1})) == rules
    assert list(index.candidates({"destination.port": True})) == []  # "true", not "1"
    assert list(index.candidates({"destination.port": 1.0})) == []  # "1.0"
    assert list(index.candidates({"destination.port": "1"})) == rules
    # The same through the generated find, which reads remembered strs and ints itself.
    assert list(index.find({"destination.port": 1})) == rules
    assert list(index.find({"destination.port": True})) == []
    assert list(index.find({"destination.port": 1.0})) == []


# --- lists of two values -----------------------------------------------------------------------


def _predicate(detection: dict[str, Any]) -> Any:
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "linux", "category": "process_creation"},
            "detection": {"sel": detection, "condition": "sel"},
        }
    )
    canhgac_pipeline().apply(rule)
    return compile_rule(rule).predicate


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("abAB -", max_size=3), min_size=2, max_size=2),
    st.one_of(st.none(), st.text("abAB -", max_size=3), st.lists(st.text("abAB", max_size=2))),
)
def test_a_list_of_two_values_matches_as_its_values_do(pair: list[str], value: Any) -> None:
    fields = {} if value is None else {"user.name": value}
    each = [_predicate({"user.name": v}) for v in pair]
    assert _predicate({"user.name": pair})(fields) == any(p(fields) for p in each)


# --- the engine --------------------------------------------------------------------------------

RULES = """\
    title: Login failure
    id: 6f1d0c1e-0000-4000-8000-000000000001
    name: fast_failure
    logsource: {product: linux, service: sshd}
    detection:
      sel:
        event.action: ssh_login
        event.outcome: failure
      condition: sel
    level: low
    ---
    title: Login by root
    id: 6f1d0c1e-0000-4000-8000-000000000002
    name: fast_root
    logsource: {product: linux, service: sshd}
    detection:
      sel:
        event.action: ssh_login
        user.name: root
      condition: sel
    level: medium
    ---
    title: Root login failures
    id: 6f1d0c1e-0000-4000-8000-000000000003
    correlation:
      type: event_count
      rules: [fast_failure, fast_root]
      group-by: [source.ip]
      timespan: 5m
      condition: {gte: 3}
    level: high
    ---
    title: Failure then root login
    id: 6f1d0c1e-0000-4000-8000-000000000004
    correlation:
      type: temporal
      rules: [fast_failure, fast_root]
      group-by: [source.ip]
      timespan: 5m
      generate: true
    level: high
    ---
    title: Program in a temporary directory
    id: 6f1d0c1e-0000-4000-8000-000000000005
    logsource: {product: linux, category: process_creation}
    detection:
      sel:
        Image|startswith: /tmp/
      condition: sel
    level: high
    """

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _events(seed: int) -> list[pb.Event]:
    rng = random.Random(seed)
    out = []
    for i in range(300):
        t = T0 + i * S
        ev = pb.Event(id=f"e{i}", time_ns=t, agent_id=f"a{i % 3}", host=f"h{i % 3}")
        if rng.random() < 0.6:
            ev.category = rng.choice(["authentication", "Authentication", "AUTHENTICATION"])
            ev.type, ev.action = "start", "ssh_login"
            ev.outcome = rng.choice([pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE])
            ev.auth.user = rng.choice(["root", "Root", "alice"])
            ev.auth.source_ip = f"203.0.113.{rng.randint(1, 3)}"
        else:
            ev.category = rng.choice(["process", "Process"])
            ev.type, ev.action = "start", "exec"
            ev.process.executable = rng.choice(["/tmp/x", "/TMP/y", "/usr/bin/ls"])
        out.append(ev)
    return out


def _comparable(alerts: Sequence[alert_pb2.Alert]) -> list[tuple[Any, ...]]:
    return [
        (a.rule_id, a.summary, tuple(a.event_ids), dict(a.group), a.event_count, a.first_seen_ns)
        for a in alerts
    ]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_the_engine_raises_what_the_full_field_engine_raises(seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="canhgac-fast-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(textwrap.dedent(RULES))
        fast, result = DetectionEngine.from_paths([path], clock_ns=lambda: T0)
        full, _ = DetectionEngine.from_paths([path], clock_ns=lambda: T0, full_fields=True)
    assert not result.errors, result.errors
    events = _events(seed)
    got, expected = [], []
    for start in range(0, len(events), 50):
        got += _comparable(fast.process(events[start : start + 50]))
        expected += _comparable(full.process(events[start : start + 50]))
    assert got == expected
    rules = {a[0] for a in got}
    # Both correlations fed (by one rule, and by two on a failed root login) and the process
    # rule raised alerts, whatever the case of the categories.
    assert {
        "6f1d0c1e-0000-4000-8000-000000000003",
        "6f1d0c1e-0000-4000-8000-000000000004",
        "6f1d0c1e-0000-4000-8000-000000000005",
    } <= rules


def test_one_event_matching_two_rules_feeds_both_to_a_temporal_correlation() -> None:
    with tempfile.TemporaryDirectory(prefix="canhgac-fast-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(textwrap.dedent(RULES))
        engines = [
            DetectionEngine.from_paths([path], clock_ns=lambda: T0, full_fields=full)[0]
            for full in (False, True)
        ]
    ev = pb.Event(id="e1", time_ns=T0, agent_id="a1", host="h1", category="authentication")
    ev.type, ev.action, ev.outcome = "start", "ssh_login", pb.OUTCOME_FAILURE
    ev.auth.user, ev.auth.source_ip = "root", "203.0.113.9"
    for engine in engines:
        raised = {a.rule_id for a in engine.process([ev])}
        # Both rules alert (generate: true) and the sequence is complete on this one event.
        assert "6f1d0c1e-0000-4000-8000-000000000004" in raised


# --- string tests written out for str fields ---------------------------------------------------

field_values = st.one_of(
    st.none(),
    st.text("aAbB*?", max_size=5),
    st.integers(-2, 12),
    st.booleans(),
    st.lists(st.text("aAbB", max_size=3), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(st.text("aAbB*?1", max_size=5), st.booleans(), field_values)
def test_a_written_out_string_leaf_decides_as_the_generic_one(
    pattern: str, cased: bool, value: Any
) -> None:
    sigma = (SigmaCasedString if cased else SigmaString)(pattern)
    fields = {} if value is None else {"user.name": value}
    leaf = _TreeCompiler(lambda name: True)._leaf("user.name", sigma)
    assert leaf(fields) == _on_text("user.name", *string_test(sigma))(fields)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["in", "prefix", "suffix"]),
    st.lists(st.text("abB", max_size=3), min_size=1, max_size=3),
    field_values,
)
def test_a_written_out_group_of_values_decides_as_the_generic_one(
    kind: str, texts: list[str], value: Any
) -> None:
    lowered = [t.lower() for t in texts]
    fields = {} if value is None else {"user.name": value}
    operand: frozenset[str] | tuple[str, ...]
    if kind == "in":
        operand = frozenset(lowered)
        test: Any = operand.__contains__
    else:
        operand = tuple(lowered)
        test = _affix_test("prefix" if kind == "prefix" else "suffix", operand)
    fast = _folded("user.name", kind, operand, test)
    assert fast(fields) == _on_text("user.name", True, test)(fields)


def _substring_rule(parts: list[str], every: bool, also: str | None) -> SigmaRule:
    detection: dict[str, Any] = {"process.command_line|contains" + ("|all" if every else ""): parts}
    if also is not None:
        detection["process.executable|contains"] = also
    return SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "linux", "category": "process_creation"},
            "detection": {"sel": detection, "condition": "sel"},
        }
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text("aAbB -", min_size=1, max_size=3), min_size=2, max_size=4),
    st.booleans(),
    st.one_of(st.none(), st.text("aAb", min_size=1, max_size=2)),
    field_values,
    st.one_of(st.none(), st.text("aAbB", max_size=4)),
)
# A list whose elements hold one substring each: all of them are in it, as separate tests say.
@example(["a", "B"], True, None, ["xa", "b"], None)
def test_substrings_of_one_field_tested_together_decide_as_apiece(
    parts: list[str], every: bool, also: str | None, value: Any, executable: str | None
) -> None:
    # `contains: [a, b]` (any) and `contains|all: [a, b]` on one field are one closure that
    # lower-cases the value once; the reference is each substring's own leaf, and-ed or or-ed.
    rule = _substring_rule(parts, every, also)
    canhgac_pipeline().apply(rule)
    fast = compile_rule(rule).predicate
    fields: dict[str, Any] = {"event.category": "process", "event.type": "start"}
    if value is not None:
        fields["process.command_line"] = value
    if executable is not None:
        fields["process.executable"] = executable
    leaf = _TreeCompiler(lambda name: True)._leaf
    tests = [leaf("process.command_line", SigmaString(f"*{p}*")) for p in parts]
    decided = all(t(fields) for t in tests) if every else any(t(fields) for t in tests)
    if also is not None:
        decided = decided and leaf("process.executable", SigmaString(f"*{also}*"))(fields)
    assert fast(fields) == decided
