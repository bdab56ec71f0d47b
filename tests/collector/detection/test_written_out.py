"""Predicates written out as one function (collector.detection.written) return what the trees
of closures they replace return, for every field dict:

* trees built from the compiler's own constructors, drawn at random (every described leaf
  kind, opaque leaves, constants, and/or/not nested), on field dicts with str values in any
  case, lists, numbers, booleans and missing fields;
* every rule of the shipped library and of the benchmark's generated shapes, compiled both
  ways, on events made from the rules' own literals.
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.exceptions import SigmaValueError
from sigma.rule import SigmaRule

from collector.detection import written
from collector.detection.base import Predicate
from collector.detection.compiler import (
    _affix_test,
    _all,
    _always,
    _any,
    _contains_all,
    _contains_any,
    _folded,
    _never,
    _not,
    compile_rule,
)
from collector.detection.pipeline import canhgac_pipeline
from collector.detection.ruleset import read_rule_files

ROOT = Path(__file__).resolve().parents[3]
KEYS = ["a", "b", "c"]
WORDS = ["ab", "a", "b/", "/x", "ab/x", ""]

# --- random trees --------------------------------------------------------------------------


def _lower_words() -> st.SearchStrategy[str]:
    return st.sampled_from([w for w in WORDS if w])


@st.composite
def leaves(draw: st.DrawFn) -> Predicate:
    key = draw(st.sampled_from(KEYS))
    kind = draw(
        st.sampled_from(["eq", "in", "contains", "prefix", "suffix", "any", "all", "opaque"])
    )
    if kind == "eq":
        literal = draw(_lower_words())
        return _folded(key, "eq", literal, literal.__eq__)
    if kind == "in":
        members = frozenset(draw(st.lists(_lower_words(), min_size=1, max_size=3)))
        return _folded(key, "in", members, members.__contains__)
    if kind == "contains":
        part = draw(_lower_words())
        return _folded(key, "contains", part, lambda s: part in s)
    if kind in ("prefix", "suffix"):
        affixes = tuple(draw(st.lists(_lower_words(), min_size=1, max_size=3)))
        operand: str | tuple[str, ...] = affixes[0] if len(affixes) == 1 else affixes
        return _folded(key, kind, operand, _affix_test(kind, affixes))
    if kind in ("any", "all"):
        size = draw(st.sampled_from([1, 2, 3, written.MAX_INLINE_PARTS + 1]))
        parts = tuple(draw(_lower_words()) for _ in range(size))
        return _contains_any(key, parts) if kind == "any" else _contains_all(key, parts)
    number = draw(st.integers(0, 3))

    def opaque(f: Mapping[str, Any]) -> bool:  # a leaf without a description (a number test)
        return f.get(key) == number

    return opaque


def trees() -> st.SearchStrategy[Predicate]:
    """Trees with a connective at the root (a lone leaf is never written out)."""
    base = st.one_of(leaves(), leaves(), st.sampled_from([_always, _never]))
    inner = st.recursive(
        base,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=4).map(_all),
            st.lists(children, min_size=1, max_size=4).map(_any),
            children.map(_not),
        ),
        max_leaves=10,
    )
    return st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(_all),
        st.lists(inner, min_size=2, max_size=4).map(_any),
        inner.map(_not),
    )


def values() -> st.SearchStrategy[object]:
    word = st.sampled_from(WORDS)
    text = st.one_of(
        word.flatmap(lambda w: st.sampled_from([w, w.upper(), f"z{w}", f"{w}Z", f"/{w}/q"])),
        st.lists(word, min_size=2, max_size=3).map("".join),  # several parts in one value
    )
    return st.one_of(
        text,
        st.lists(text, max_size=3),
        st.integers(0, 3),
        st.booleans(),
        st.floats(allow_nan=False, width=16),
    )


def field_dicts() -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(KEYS), values(), max_size=3)


@settings(max_examples=400, deadline=None)
@given(tree=trees(), events=st.lists(field_dicts(), min_size=4, max_size=16))
def test_a_written_tree_returns_what_its_closures_return(
    tree: Predicate, events: list[dict[str, object]]
) -> None:
    function = written.written_out(tree)
    for fields in events:
        assert function(fields) is tree(fields), (fields, written.shape_of(tree))


def test_only_trees_with_a_connective_are_written_and_huge_ones_are_left() -> None:
    leaf = _folded("a", "eq", "x", "x".__eq__)
    assert written.written_out(leaf) is leaf
    pair = _all([leaf, _folded("b", "eq", "y", "y".__eq__)])
    function = written.written_out(pair)
    assert function is not pair
    assert function({"a": "X", "b": "y"})
    assert not function({"a": "X"})
    # Of several substrings, any one or every one (ab holds, /x does not).
    other = _folded("b", "eq", "q", "q".__eq__)
    some = _any([_contains_any("a", ("ab", "/x")), other])
    every = _any([_contains_all("a", ("ab", "/x")), other])
    assert written.written_out(some) is not some
    assert some({"a": "AB"})
    assert written.written_out(some)({"a": "AB"})
    assert not every({"a": "AB"})
    assert not written.written_out(every)({"a": "AB"})
    wide = _any([_folded("a", "eq", str(i), str(i).__eq__) for i in range(written.MAX_NODES)])
    assert written.written_out(wide) is wide
    deep: Predicate = leaf
    for _ in range(written.MAX_DEPTH + 1):
        deep = _not(_all([deep, _always, leaf]))
    assert written.written_out(deep) is deep


def test_no_rule_text_reaches_the_source() -> None:
    # A literal that would be code if pasted into the source is held as a value, never written.
    hostile = "x') or __import__('os').system('true') or ('"
    tree = _all([_folded("a", "eq", hostile, hostile.__eq__), _folded("b", "eq", "y", "y".__eq__)])
    function = written.written_out(tree)
    assert function({"a": hostile.upper(), "b": "y"})
    assert not function({"a": "x", "b": "y"})


# --- the rules we ship and the benchmark's shapes ----------------------------------------------


def _rules() -> list[Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import detection as bench  # the benchmark's generated rule shapes
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rng = random.Random(7)
    generated = "\n---\n".join(bench.extra_rule(i, rng) for i in range(120))
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "generated.yml"
        extra.write_text(generated)
        files = read_rule_files([ROOT / "rules", extra])
    assert not files.errors
    pipeline = canhgac_pipeline()
    # Correlations have no predicate of their own: their base rules are among these.
    return [pipeline.apply(rule) for _, rule in files.rules if isinstance(rule, SigmaRule)]


def _literals(rule: Any) -> list[str]:
    found: list[str] = []
    for detection in rule.detection.detections.values():
        for item in getattr(detection, "detection_items", []):
            for value in getattr(item, "value", []):
                with contextlib.suppress(SigmaValueError):  # a CIDR, a regex ...: no literal
                    found.append(str(value.to_plain()))
    return [f for f in found if f] or ["x"]


def test_the_library_and_the_benchmark_rules_are_the_same_written_out() -> None:
    rng = random.Random(11)
    compared = written_count = 0
    for rule in _rules():
        both: list[tuple[Predicate, Predicate]] = []
        plain = compile_rule(rule, write_out=False)
        done = compile_rule(rule)
        both.append((plain.predicate, done.predicate))
        if plain.in_category is not None and done.in_category is not None:
            both.append((plain.in_category, done.in_category))
        fields = sorted(plain.fields) or ["process.command_line"]
        literals = _literals(rule)
        for tree, function in both:
            written_count += function is not tree
            for _ in range(60):
                event = _event(rng, fields, literals)
                assert function(event) is tree(event), (rule.title, event)
                compared += 1
    assert written_count > 100  # most rules have a connective and are written out
    assert compared > 10_000


def _event(rng: random.Random, fields: list[str], literals: list[str]) -> dict[str, object]:
    shapes: list[Callable[[str], object]] = [
        lambda s: s,
        str.upper,
        lambda s: f"/usr/bin/{s}",
        lambda s: f"{s} -x /tmp/y",
        lambda s: [s, "other"],
        lambda s: int(s) if s.isdigit() else s,
        lambda s: re.sub(r"[aeiou]", "", s),
    ]
    event: dict[str, object] = {}
    for name in fields:
        if rng.random() < 0.15:
            continue  # missing
        event[name] = rng.choice(shapes)(rng.choice(literals))
    return event
