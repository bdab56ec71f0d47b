"""The rule index never hides a rule that matches (property), and does narrow the candidates."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule

from collector.detection.compiler import compile_rule
from collector.detection.index import (
    Anchor,
    RuleIndex,
    anchors,
    proven_by_index,
    required_literals,
)
from collector.detection.pipeline import canhgac_pipeline

FIELDS = ["process.command_line", "process.executable", "user.name", "destination.port"]
ALPHABET = "abc/-"
MODIFIERS = ["", "|contains", "|startswith", "|endswith", "|contains|all", "|re"]


def sigma_rule(detection: dict[str, Any], condition: str) -> tuple[SigmaRule, Any]:
    rule = SigmaRule.from_dict(
        {
            "title": "generated",
            "logsource": {"product": "linux", "category": "process_creation"},
            "detection": {**detection, "condition": condition},
        }
    )
    canhgac_pipeline().apply(rule)
    parsed = rule.detection.parsed_condition[0].parsed
    return rule, parsed


literal = st.text(ALPHABET, min_size=3, max_size=4)


@st.composite
def selections(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(FIELDS[:3]), min_size=1, max_size=2, unique=True)):
        modifier = draw(st.sampled_from(MODIFIERS))
        values = draw(st.lists(literal, min_size=1, max_size=3))
        if modifier == "|re":
            values = [v.replace("/", "\\/") for v in values]
        out[field + modifier] = values if len(values) > 1 else values[0]
    if draw(st.booleans()):
        out["destination.port"] = draw(st.integers(1, 3))
    return out


CONDITIONS = ["a", "a and b", "a or b", "a and not b", "not a", "(a or b) and not b", "1 of *"]


@st.composite
def rules(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    # Plain data: pySigma draws random names while parsing, which a strategy must not do.
    return {"a": draw(selections()), "b": draw(selections())}, draw(st.sampled_from(CONDITIONS))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {"event.category": "process", "event.type": "start"}
    for field in FIELDS[:3]:
        if draw(st.booleans()):
            fields[field] = draw(st.text(ALPHABET + "ABC", min_size=3, max_size=10))
    if draw(st.booleans()):
        fields["destination.port"] = draw(st.integers(1, 3))
    return fields


@settings(max_examples=300, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=6), st.lists(events(), min_size=1, max_size=10))
def test_every_matching_rule_is_a_candidate(
    generated: list[tuple[dict[str, Any], str]], evs: list[dict[str, Any]]
) -> None:
    built = [sigma_rule(detection, condition) for detection, condition in generated]
    compiled = [(compile_rule(rule).predicate, parsed) for rule, parsed in built]
    index = RuleIndex(compiled, lambda c: anchors(c[1]))
    for fields in evs:
        candidates = index.candidates(fields)
        for entry in compiled:
            if entry[0](fields):
                assert entry in candidates, (fields, entry[1])
        # Candidates keep the rules' order.
        positions = [compiled.index(c) for c in candidates]
        assert positions == sorted(positions)


def test_anchors_of_common_shapes() -> None:
    _, parsed = sigma_rule(
        {
            "sel_img": {"Image|endswith": ["/nc", "/ncat"]},
            "sel_cli": {"CommandLine|contains": " -e "},
            "filter": {"ParentImage|startswith": "/usr/lib/"},
        },
        "sel_img and sel_cli and not filter",
    )
    found = anchors(parsed)
    # The AND keeps one side: the image suffixes, or the command-line substring.
    assert found in (
        frozenset(
            {
                Anchor("process.executable", "/nc", False),
                Anchor("process.executable", "/ncat", False),
            }
        ),
        frozenset({Anchor("process.command_line", " -e ", False)}),
    )
    _, parsed = sigma_rule({"sel": {"DestinationPort": 4444, "User": "Root"}}, "sel")
    assert anchors(parsed) in (
        frozenset({Anchor("destination.port", "4444", True)}),
        frozenset({Anchor("user.name", "root", True)}),
    )
    # A regex with only two-character literals still anchors on one of them ...
    _, parsed = sigma_rule({"sel": {"CommandLine|re": "nc.*-e"}}, "sel")
    assert anchors(parsed) in (
        frozenset({Anchor("process.command_line", "nc", False)}),
        frozenset({Anchor("process.command_line", "-e", False)}),
    )
    # ... but a longer anchor elsewhere in an AND is preferred to it.
    _, parsed = sigma_rule(
        {"sel": {"CommandLine|re": "nc.*-e", "ParentCommandLine|contains": "cron"}}, "sel"
    )
    assert anchors(parsed) == frozenset({Anchor("process.parent.command_line", "cron", False)})
    # Nothing but the category (which the category index already uses) narrows this down.
    only_category = frozenset({Anchor("event.category", "process", True)})
    _, parsed = sigma_rule({"sel": {"CommandLine|contains": "ab"}}, "not sel")
    assert anchors(parsed) == only_category


def test_the_index_narrows_candidates() -> None:
    shapes = [({"s": {"Image|endswith": f"/tool{i}"}}, "s") for i in range(50)] + [
        ({"s": {"CommandLine|re": "x.*y"}}, "s")
    ]
    compiled = []
    for detection, condition in shapes:
        rule, parsed = sigma_rule(detection, condition)
        compiled.append((compile_rule(rule).predicate, parsed))
    index = RuleIndex(compiled, lambda c: anchors(c[1]))
    assert index.indexed == 50
    hits = index.candidates({"process.executable": "/usr/bin/tool7", "event.category": "process"})
    assert [compiled.index(c) for c in hits] == [7, 50]
    assert [compiled.index(c) for c in index.candidates({"event.category": "process"})] == [50]


@st.composite
def regexes(draw: st.DrawFn, depth: int = 0) -> str:
    """Small patterns over a tiny alphabet: runs, groups, alternations and repeats."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["run", "run", "group", "alt", "class"] if depth < 2 else ["run"])
        )
        if kind == "run":
            part = draw(st.text("abcd", min_size=1, max_size=5))
        elif kind == "class":
            part = "[a-d]"
        elif kind == "group":
            part = f"(?:{draw(regexes(depth + 1))})"
        else:
            part = f"(?:{draw(regexes(depth + 1))}|{draw(regexes(depth + 1))})"
        part += draw(st.sampled_from(["", "", "?", "*", "+"]))
        parts.append(part)
    return "".join(parts)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_match_of_a_regex_contains_one_of_its_required_literals(data: st.DataObject) -> None:
    pattern = data.draw(regexes())
    literals = required_literals(pattern)
    if literals is None:
        return
    text = data.draw(st.from_regex(pattern, fullmatch=False))
    assert any(lit in text.lower() for lit in literals), (pattern, text, literals)


def test_required_literals_of_typical_rule_expressions() -> None:
    assert required_literals(r"\bsocat\b.*\b(exec|system):") == frozenset({"socat"})
    assert required_literals(r"^(ip6?tables|xtables-nft-multi)$") == frozenset(
        {"tables", "xtables-nft-multi"}
    )
    assert required_literals(r"(?:abc)*x") is None  # the group may be absent
    # Only two-character literals: one of them, as a last resort.
    assert required_literals(r"nc\s+-e") in (frozenset({"nc"}), frozenset({"-e"}))
    assert required_literals(r"a.b") is None  # nothing of two characters either
    # The parser factors a common prefix out of alternatives (`n(?:c|cat|etcat)`): rejoined.
    assert required_literals(r"\b(nc|ncat|netcat|nc\.traditional)\b.*\s(-e|-c)\s") == frozenset(
        {"nc", "ncat", "netcat", "nc.traditional"}
    )
    assert required_literals(r"(?:Xab|Xcd)") == frozenset({"xab", "xcd"})
    assert required_literals("[unbalanced") is None


# --- tests an exact anchor proves: skipped by the predicate, never changing the result --------

ACTIONS = ["ssh_login", "sudo", "exec"]


@st.composite
def anchored_rules(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    detection, condition = draw(rules())
    for name in ("a", "b"):  # the shapes of the SSH and file-change rules: an exact action
        if draw(st.booleans()):
            actions = draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True))
            detection[name]["event.action"] = actions if len(actions) > 1 else actions[0]
    return detection, condition


@st.composite
def acted_events(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(events())
    if draw(st.integers(0, 3)):
        action = draw(st.sampled_from(ACTIONS))
        fields["event.action"] = action.upper() if draw(st.booleans()) else action
    return fields


@settings(max_examples=300, deadline=None)
@given(
    st.lists(anchored_rules(), min_size=1, max_size=6),
    st.lists(acted_events(), min_size=1, max_size=10),
)
def test_a_predicate_skipping_what_the_index_proved_decides_as_the_full_one(
    generated: list[tuple[dict[str, Any], str]], evs: list[dict[str, Any]]
) -> None:
    built = [sigma_rule(detection, condition) for detection, condition in generated]
    entries = []
    for rule, parsed in built:
        found = anchors(parsed)
        proven = proven_by_index(found)
        entries.append((compile_rule(rule), compile_rule(rule, proven=proven), found, proven))
    index = RuleIndex(entries, lambda e: e[2])
    for fields in evs:
        for full, skipping, _, proven in index.candidates(fields):
            if proven is not None:  # the fact holds for every candidate it was given for
                name, allowed = proven
                assert str(fields.get(name, "")).lower() in allowed
            assert skipping.predicate(fields) == full.predicate(fields), (fields, proven)
            assert skipping.in_category is not None
            assert full.in_category is not None
            assert skipping.in_category(fields) == full.in_category(fields)


def test_an_exact_action_anchor_is_not_tested_again() -> None:
    rule, parsed = sigma_rule(
        {"a": {"event.action": ["ssh_login", "sudo"], "user.name|startswith": "r"}}, "a"
    )
    proven = proven_by_index(anchors(parsed))
    assert proven == ("event.action", frozenset({"ssh_login", "sudo"}))
    skipping = compile_rule(rule, proven=proven)
    # Without the action in the fields the full predicate fails; the skipping one relies on
    # the index having seen it, and reads the other test alone.
    fields = {"event.category": "process", "event.type": "start", "user.name": "ROOT"}
    assert skipping.predicate(fields)
    assert not compile_rule(rule).predicate(fields)
    assert "event.action" not in skipping.fields
    # Only what the proof covers is skipped: a narrower test on the field is kept.
    narrower, parsed = sigma_rule(
        {"a": {"event.action": ["ssh_login", "sudo"]}, "b": {"event.action": "sudo"}}, "a and b"
    )
    assert proven_by_index(anchors(parsed)) == ("event.action", frozenset({"sudo"}))
    keeps = compile_rule(narrower, proven=("event.action", frozenset({"ssh_login", "sudo"})))
    assert not keeps.predicate({**fields, "event.action": "ssh_login"})
    assert keeps.predicate({**fields, "event.action": "SUDO"})


def test_no_proof_from_weak_substring_or_mixed_anchors() -> None:
    assert proven_by_index(None) is None
    assert proven_by_index(frozenset({Anchor("event.outcome", "failure", True)})) is None
    assert proven_by_index(frozenset({Anchor("user.name", "roo", False)})) is None
    mixed = frozenset({Anchor("user.name", "root", True), Anchor("event.action", "sudo", True)})
    assert proven_by_index(mixed) is None
