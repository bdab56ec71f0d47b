"""Which rules can an event possibly match? An index on cheap, discriminating field values.

For every base rule, `anchors()` works out from its condition tree a set of *anchors*: a field
with a literal, such that whenever the rule matches, at least one anchor holds for the event,
either as the field's whole value (`exact`) or as a substring of it. An AND needs only the
anchors of one of its parts (the most selective is chosen), an OR needs those of all its
parts, a regular expression gives the longest literal text every match must contain (if any),
and a NOT, a CIDR, a comparison or an existence test gives none:
a rule without anchors is evaluated on every event of its category.

`RuleIndex.candidates(fields)` then looks an event's values up: a dict per field for exact
anchors, one Aho-Corasick automaton per field for substrings, both on lower-cased text. The
result is a superset of the rules that match (the full predicate still decides), in the order
the rules were given, so alerts come out in the same order as without the index. What a hit on
exact anchors establishes (`proven_by_index`) the rule's predicate need not test again. A
short field's values repeat (programs, actions, ports): the rules each value hit are remembered,
up to MEMO_SIZE values per field. `RuleIndex.find` is `candidates` written out for one index;
`find_among` the same over the fields an event of one payload kind can hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# The standard library's own regular-expression parser (what `re.compile` uses); only the top
# level of the parse is read, to find literal text a match cannot do without.
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Final, Generic, TypeVar

import ahocorasick
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.types import SigmaExpansion, SigmaNumber, SigmaRegularExpression, SigmaString

from collector.detection.base import Proven
from collector.detection.matchers import text

T = TypeVar("T")

# Too common to narrow anything down: every event of a category bucket has these.
_WEAK_FIELDS: Final = frozenset({"event.category", "event.type", "event.outcome", "event.module"})
# A handful of values per category ("modified" is most file events): an exact action narrows
# less than a path or a program's name does, so an AND anchors on those when it has them.
_COARSE_FIELDS: Final = frozenset({"event.action"})
# A log's format ("zeek" is every Zeek record) loses only a tie, to its log's or program's name.
_TIE_LOSING_FIELDS: Final = frozenset({"canhgac.log.format"})
# Long free text: a substring found there narrows less than one in a path or a name.
_LONG_TEXT_FIELDS: Final = frozenset(
    {"process.command_line", "process.parent.command_line", "event.original", "process.args"}
)
# A substring shorter than this matches too much to be worth an automaton hit ...
MIN_SUBSTRING: Final = 3
# ... unless a regular expression has nothing longer: `\b(nc|ncat)\b.*\s-e\s` still skips
# most command lines on "nc", where without an anchor it would run on every event.
MIN_REGEX_FALLBACK: Final = 2


@dataclass(frozen=True)
class Anchor:
    field: str
    literal: str  # lower-case text
    exact: bool  # the whole value (True) or a substring of it (False)


Anchors = frozenset[Anchor]


def anchors(node: object) -> Anchors | None:
    """Anchors of a (pipeline-processed) Sigma condition node, None when none are known."""
    if isinstance(node, ConditionOR):
        union: set[Anchor] = set()
        for arg in node.args:
            sub = anchors(arg)
            if sub is None:
                return None
            union |= sub
        return frozenset(union)
    if isinstance(node, ConditionAND):
        options = [a for a in (anchors(arg) for arg in node.args) if a is not None]
        return min(options, key=_cost) if options else None
    if isinstance(node, ConditionNOT):
        return None
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(node.field, node.value)
    return None


def _leaf(field: str, value: object) -> Anchors | None:
    if isinstance(value, SigmaExpansion):  # base64offset, windash: any of the variants
        union: set[Anchor] = set()
        for variant in value.values:
            sub = _leaf(field, variant)
            if sub is None:
                return None
            union |= sub
        return frozenset(union)
    if isinstance(value, SigmaNumber):
        return frozenset({Anchor(field, str(value.number).lower(), True)})
    if isinstance(value, SigmaRegularExpression):
        literals = required_literals(str(value.regexp))
        if literals is None:
            return None
        return frozenset(Anchor(field, literal, False) for literal in literals)
    if not isinstance(value, SigmaString):
        return None
    parts = value.s
    chunks = [p for p in parts if isinstance(p, str)]
    if len(chunks) == len(parts):  # no wildcard: the whole value
        return frozenset({Anchor(field, "".join(chunks).lower(), True)})
    longest = max(chunks, key=len, default="")
    if len(longest) < MIN_SUBSTRING:
        return None
    return frozenset({Anchor(field, longest.lower(), False)})


def required_literals(pattern: str) -> frozenset[str] | None:
    """Literal texts (lower-cased) one of which every match of `pattern` contains, or None.

    Read from the parse `re.compile` itself uses: a run of plain characters in the pattern's
    sequence is required; a group or a repeat of at least one is required when its content is;
    an alternation gives the union of each alternative's best choice (None if one alternative
    has none). Of the required options the most selective (the longest shortest literal) wins.
    Literals are at least MIN_SUBSTRING long, or MIN_REGEX_FALLBACK when there is no longer.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    try:
        for minimum in (MIN_SUBSTRING, MIN_REGEX_FALLBACK):
            found = _best(_sequence_options(list(parsed), minimum))
            if found is not None:
                return found
    except RecursionError:
        return None
    return None


def _sequence_options(items: list[Any], minimum: int) -> list[frozenset[str]]:
    options: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) >= minimum:
            options.append(frozenset({"".join(run).lower()}))
        run.clear()

    for op, arg in items:
        if op is sre_constants.LITERAL:
            run.append(chr(arg))
            continue
        if op is sre_constants.BRANCH and run:
            # The parser moves a prefix common to all alternatives out in front of them
            # (`nc|ncat` is `n(?:c|cat)`): the prefix and each alternative's leading text.
            prefix = "".join(run)
            joined = {prefix + _leading_text(list(alt)) for alt in arg[1]}
            if min(len(x) for x in joined) >= minimum:
                options.append(frozenset(x.lower() for x in joined))
        close_run()
        if op is sre_constants.SUBPATTERN:
            options.extend(_sequence_options(list(arg[-1]), minimum))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and arg[0] >= 1:
            options.extend(_sequence_options(list(arg[2]), minimum))
        elif op is sre_constants.BRANCH:
            union: set[str] = set()
            for alternative in arg[1]:
                best = _best(_sequence_options(list(alternative), minimum))
                if best is None:
                    break
                union |= best
            else:
                options.append(frozenset(union))
    close_run()
    return options


def _leading_text(items: list[Any]) -> str:
    chars: list[str] = []
    for op, arg in items:
        if op is not sre_constants.LITERAL:
            break
        chars.append(chr(arg))
    return "".join(chars)


def _best(options: list[frozenset[str]]) -> frozenset[str] | None:
    if not options:
        return None
    return max(options, key=lambda o: (min(len(x) for x in o), -len(o)))


def _cost(option: Anchors) -> tuple[int, int, int, int, int, int, int]:
    """Lower is more selective: strong fields first, then fields of many values (not the
    action), then no fallback-short substrings, then short-valued fields (a program's path says
    more than a substring of a long command line), fewer anchors, not the log format, longer
    literals."""
    weak = sum(a.field in _WEAK_FIELDS for a in option)
    coarse = sum(a.field in _COARSE_FIELDS for a in option)
    tie_losing = sum(a.field in _TIE_LOSING_FIELDS for a in option)
    short = sum(not a.exact and len(a.literal) < MIN_SUBSTRING for a in option)
    long_text = sum(a.field in _LONG_TEXT_FIELDS and not a.exact for a in option)
    shortest = min((len(a.literal) for a in option), default=0)
    return (weak, coarse, short, long_text, len(option), tie_losing, -shortest)


def proven_by_index(found: Anchors | None) -> Proven | None:
    """What RuleIndex establishes for a rule with these anchors before returning it, or None.

    A rule whose anchors are all exact values of one (indexed, not weak) field is returned by
    `candidates()` only when the event's value, or one element of it, lower-cased, is one of
    them: its predicate need not test that again (compile_rule's `proven`).
    """
    if not found or not _indexed(found):
        return None
    names = {a.field for a in found}
    if len(names) != 1 or not all(a.exact for a in found):
        return None
    return names.pop(), frozenset(a.literal for a in found)


def _indexed(found: Anchors) -> bool:
    return not any(a.field in _WEAK_FIELDS for a in found)


# Values remembered per field before the memo starts again (a bound on its memory).
MEMO_SIZE: Final = 4096


class RuleIndex(Generic[T]):
    """Rules of one category bucket, indexed by their anchors (see the module docstring).

    `candidates()` probes each indexed field once per event: the exact table and the
    automaton of the field both come out of one `_Probe`, which remembers (up to MEMO_SIZE
    values) what a short field's value hit, since program paths and names repeat from event to
    event. An event that hits one literal group only (the common case: an action, one program)
    gets that group's rule list, computed once at build time; only several groups are merged.
    """

    def __init__(self, rules: Sequence[T], anchors_of: Callable[[T], Anchors | None]) -> None:
        self._rules = tuple(rules)
        self._always: list[int] = []
        self._unions: dict[frozenset[int], _Group[T]] = {}  # see _merged
        exact: dict[str, dict[str, list[int]]] = {}
        substrings: dict[str, dict[str, list[int]]] = {}
        for position, rule in enumerate(self._rules):
            found = anchors_of(rule)
            if not found or not _indexed(found):
                self._always.append(position)
                continue
            for a in found:
                table = exact if a.exact else substrings
                table.setdefault(a.field, {}).setdefault(a.literal, []).append(position)
        self._always_rules = tuple(self._rules[i] for i in self._always)
        groups: dict[frozenset[int], _Group[T]] = {}

        def group(positions: Iterable[int]) -> _Group[T]:
            key = frozenset(positions)
            found = groups.get(key)
            if found is None:
                found = groups[key] = _Group(key, self._rules_at(key))
            return found

        # One probe per indexed field, so an event costs one pass.
        probes = [
            (
                name,
                _Probe(
                    {k: group(v) for k, v in exact.get(name, {}).items()},
                    _automaton({k: group(v) for k, v in substrings[name].items()})
                    if name in substrings
                    else None,
                    self._merged,
                    memo=name not in _LONG_TEXT_FIELDS,
                ),
            )
            for name in sorted(set(exact) | set(substrings))
        ]
        self._probes = tuple((name, probe.memo, probe) for name, probe in probes)
        self.indexed = len(self._rules) - len(self._always)
        # `candidates` written out for these probes: what the engine calls per event.
        self.find: Callable[[Mapping[str, Any]], Sequence[T]] = self._compile_find(self._probes)
        self._finds: dict[frozenset[str], Callable[[Mapping[str, Any]], Sequence[T]]] = {}

    def _merged(self, positions: frozenset[int]) -> _Group[T]:
        # Not kept in `groups`: which literals one value holds together is open-ended; but the
        # same few unions come back event after event, so they are remembered (up to MEMO_SIZE).
        group = self._unions.get(positions)
        if group is None:
            if len(self._unions) >= MEMO_SIZE:
                self._unions.clear()
            group = self._unions[positions] = _Group(positions, self._rules_at(positions))
        return group

    def _rules_at(self, positions: Iterable[int]) -> tuple[T, ...]:
        merged = set(positions)
        merged.update(self._always)
        rules = self._rules
        return tuple(rules[i] for i in sorted(merged))

    def __len__(self) -> int:
        return len(self._rules)

    def candidates(self, fields: Mapping[str, Any]) -> Sequence[T]:
        if not self._probes:
            return self._rules
        first: _Group[T] | None = None
        more: list[_Group[T]] | None = None
        for name, memo, probe in self._probes:
            value = fields.get(name)
            if value is None:
                continue
            # The memo's look-up written out here: a call per probe cost as much as the probe.
            if type(value) is str:
                if memo is None:
                    found = probe.one(value.lower())
                elif value in memo:
                    found = memo[value]  # a str caches its hash: the second look-up is cheap
                else:
                    found = probe.hits(value)
            else:
                found = probe.hits(value)  # ints remembered too, lists probed element-wise
            if found is None:
                continue
            if first is None:
                first = found
            elif found is not first:
                if more is None:
                    more = [found]
                else:
                    more.append(found)
        if first is None:  # the common case: only the rules without anchors
            return self._always_rules
        if more is None:
            return first.rules
        return self._merged(first.positions.union(*(g.positions for g in more))).rules

    def find_among(
        self, may_hold: Callable[[str], bool]
    ) -> Callable[[Mapping[str, Any]], Sequence[T]]:
        """`find` for fields that can hold only the paths `may_hold` accepts: it probes only
        those (the others are absent, so their probes would find nothing)."""
        names = frozenset(name for name, _, _ in self._probes if may_hold(name))
        found = self._finds.get(names)
        if found is None:
            probes = tuple(p for p in self._probes if p[0] in names)
            found = self._finds[names] = self._compile_find(probes)
        return found

    def _compile_find(
        self, probes: Sequence[tuple[str, Any, _Probe[T]]]
    ) -> Callable[[Mapping[str, Any]], Sequence[T]]:
        """`candidates` as one straight-line function of `probes` (the index's, or some).

        The loop over (name, memo, probe) tuples cost about as much per probe as a remembered
        probe itself (bench/detection.py). The source holds no rule text: field names, memos
        and probes are passed in the namespace under generated names (`n0`, `m0`, `p0` ...).
        """
        if not probes:
            # No probe can hit: the rules without anchors (all of them, if none is indexed).
            rules = self._always_rules
            return lambda fields: rules
        namespace: dict[str, Any] = {
            "always": self._always_rules,
            "merge": self._merge_groups,
        }
        lines = ["def find(fields):", "    first = None", "    more = None"]
        for i, (name, memo, probe) in enumerate(probes):
            namespace[f"n{i}"], namespace[f"p{i}"] = name, probe
            # `in` first: most probed fields are absent from an event (a process event has no
            # log or DNS fields), and the test is cheaper than a call of fields.get.
            lines += [
                f"    if n{i} in fields:",
                f"        v = fields[n{i}]",
                "        if v is None:",
                "            f = None",
            ]
            if memo is None:
                lines += [
                    "        elif type(v) is str:",
                    f"            f = p{i}.one(v.lower())",
                ]
            else:
                namespace[f"m{i}"] = memo
                # A remembered str or int (a port): the types _Probe.hits remembers, tested
                # exactly (True == 1, but a bool is not remembered).
                lines += [
                    f"        elif (type(v) is str or type(v) is int) and v in m{i}:",
                    f"            f = m{i}[v]",
                ]
            lines += [
                "        else:",
                f"            f = p{i}.hits(v)",
                "        if f is not None:",
                "            if first is None:",
                "                first = f",
                "            elif f is not first:",
                "                if more is None:",
                "                    more = [f]",
                "                else:",
                "                    more.append(f)",
            ]
        lines += [
            "    if first is None:",
            "        return always",
            "    if more is None:",
            "        return first.rules",
            "    return merge(first, more)",
        ]
        exec("\n".join(lines), namespace)  # noqa: S102  # generated names only, see above
        find: Callable[[Mapping[str, Any]], Sequence[T]] = namespace["find"]
        return find

    def _merge_groups(self, first: _Group[T], more: list[_Group[T]]) -> tuple[T, ...]:
        return self._merged(first.positions.union(*(g.positions for g in more))).rules


@dataclass(frozen=True, eq=False)
class _Group(Generic[T]):
    """Rule positions one probe found, and those rules with the anchorless ones, in order."""

    positions: frozenset[int]
    rules: tuple[T, ...]


class _Probe(Generic[T]):
    """One indexed field's look-ups: value -> the group of rules its anchors hit, or None."""

    def __init__(
        self,
        table: Mapping[str, _Group[T]],
        automaton: Any,
        merged: Callable[[frozenset[int]], _Group[T]],
        *,
        memo: bool,
    ) -> None:
        self._table = table
        self._automaton = automaton
        self._merged = merged
        # What short values hit, read by RuleIndex.candidates directly.
        self.memo: dict[str | int, _Group[T] | None] | None = {} if memo else None

    def hits(self, value: Any) -> _Group[T] | None:
        """The group `value` (a field value, list-valued or not) hits, None if none."""
        kind = type(value)
        # Ints are remembered beside strs (a port, an id): 1 and "1" are different keys. Not
        # bools or floats, which compare equal to ints (True == 1) but read as other text.
        if kind is not str and kind is not int:
            return self._search(_texts(value))
        memo = self.memo
        folded = value.lower() if kind is str else str(value)
        if memo is None:
            return self.one(folded)
        if value in memo:
            return memo[value]
        found = self.one(folded)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[value] = found
        return found

    def one(self, folded: str) -> _Group[T] | None:
        """The group one lower-cased text hits, None if none."""
        found = self._table.get(folded)
        automaton = self._automaton
        if automaton is None:
            return found
        several: list[_Group[T]] | None = None
        for _, hit in automaton.iter(folded):
            if found is None:
                found = hit
            elif hit is not found:
                if several is None:
                    several = [found, hit]
                else:
                    several.append(hit)
        if several is None:
            return found
        return self._merged(frozenset[int]().union(*(g.positions for g in several)))

    def _search(self, texts: Iterable[str]) -> _Group[T] | None:
        found = [group for folded in texts if (group := self.one(folded)) is not None]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        return self._merged(frozenset[int]().union(*(g.positions for g in found)))


def _automaton(table: Mapping[str, object]) -> Any:
    automaton = ahocorasick.Automaton()
    for literal, hit in table.items():
        automaton.add_word(literal, hit)
    automaton.make_automaton()
    return automaton


def _texts(value: Any) -> Iterable[str]:
    if type(value) is str:
        return (value.lower(),)
    if type(value) is list:
        return [text(v).lower() for v in value]
    return (text(value).lower(),)
