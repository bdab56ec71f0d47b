"""Compile a parsed Sigma rule into a predicate over the flat field dict, once per rule.

The input is a pySigma `SigmaRule` that has already been through `pipeline.canhgac_pipeline()`
(so field names are our dotted paths and keyword searches are field searches). The condition
tree pySigma resolves (`and`/`or`/`not`, `1 of x*`, `all of them` already expanded) is walked
once; every leaf becomes a closure holding a precompiled matcher (lower-cased literal, compiled
regex, parsed network ...), so evaluating an event does no parsing at all.

Anything the engine cannot evaluate faithfully (an unknown field, a binary-encoding modifier, a
placeholder, a timestamp-part modifier) raises RuleError naming the construct: the caller skips
that one rule and reports why, rather than running a rule that silently never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.modifiers import reverse_modifier_mapping
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaExists, SigmaFieldReference, SigmaNull, SigmaNumber, SigmaString

from canhgac import fields
from canhgac.errors import RuleError
from collector.detection.base import CompiledRule, Predicate, Proven, rule_error
from collector.detection.matchers import (
    TextTest,
    ValueMatcher,
    affix,
    number,
    plain_literal,
    string_shape,
    string_test,
    text,
    value_matcher,
)
from collector.detection.written import shaped, written_out

# Modifiers whose values we evaluate faithfully. Left out on purpose: utf16*/wide (binary
# encodings, meaningless on our decoded text fields), expand (needs placeholder data we do not
# have yet) and the timestamp parts (minute, hour ...).
SUPPORTED_MODIFIERS: Final[frozenset[str]] = frozenset(
    {
        "all",
        "contains",
        "startswith",
        "endswith",
        "cased",
        "re",
        "i",
        "ignorecase",
        "m",
        "multiline",
        "s",
        "dotall",
        "cidr",
        "exists",
        "gt",
        "gte",
        "lt",
        "lte",
        "neq",
        "fieldref",
        "base64",
        "base64offset",
        "windash",
    }
)

CATEGORY_FIELD: Final = "event.category"


def compile_rule(
    rule: SigmaRule,
    *,
    is_known_field: Callable[[str], bool] = fields.is_known_field,
    proven: Proven | None = None,
    write_out: bool = True,
) -> CompiledRule:
    """Compile one processed SigmaRule; RuleError (located at the rule's file) if we cannot.

    The predicates are written out as one function each (`written.written_out`); with
    `write_out` False they are left as the trees of closures the written ones must equal.

    `proven` is a (field, lower-case values) fact every event the predicates will see has: its
    value, or one element of it, is one of those values compared case-insensitively (what the
    rule index's exact anchors establish, see index.proven_by_index). Tests that fact settles
    are compiled to True, so the rule does not check again what the index just looked up.
    """
    try:
        _check_modifiers(rule.detection.detections.values())
        try:
            trees = [cond.parsed for cond in rule.detection.parsed_condition]
        except SigmaError as exc:
            raise RuleError(f"invalid condition: {exc}") from exc
        trees = [tree for tree in trees if tree is not None]
        if not trees:
            raise RuleError("the detection is empty")
        compiler = _TreeCompiler(is_known_field, proven=proven)
        predicate = _any([compiler.node(tree) for tree in trees])
        if write_out:
            predicate = written_out(predicate)
        used = frozenset(compiler.used)
    except RuleError as exc:
        if exc.location is not None:
            raise
        raise rule_error(exc.message, rule) from exc
    categories = [_categories(tree) for tree in trees]
    if any(c is None for c in categories):
        return CompiledRule(predicate, None, used)
    required = frozenset[str]().union(*(c for c in categories if c is not None))
    if len(required) != 1:
        return CompiledRule(predicate, required, used)
    # The engine runs such a rule only on events of its one category, where the rule's own
    # `event.category` tests are always true: a second predicate without them.
    (category,) = required
    in_category = _TreeCompiler(is_known_field, known_category=category, proven=proven)
    specialised = _any([in_category.node(tree) for tree in trees])
    if write_out:
        specialised = written_out(specialised)
    return CompiledRule(predicate, required, used, specialised, frozenset(in_category.used))


def _check_modifiers(detections: Iterable[SigmaDetection]) -> None:
    for detection in detections:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                _check_modifiers([item])
                continue
            for modifier in item.modifiers:
                name = reverse_modifier_mapping.get(modifier.__name__, modifier.__name__)
                if name not in SUPPORTED_MODIFIERS:
                    where = item.field or "(keyword)"
                    raise RuleError(f"unsupported modifier '{name}' on field '{where}'")


class _TreeCompiler:
    """Turns condition-tree nodes into predicates; holds the field-name check and records
    every field a predicate reads (`used`: the fields the engine must compute for the rule)."""

    def __init__(
        self,
        is_known_field: Callable[[str], bool],
        *,
        known_category: str | None = None,
        proven: Proven | None = None,
    ) -> None:
        self._is_known_field = is_known_field
        self._known_category = known_category  # the lower-cased event.category of every event
        self._proven = proven
        self.used: set[str] = set()

    def node(self, node: object) -> Predicate:
        if isinstance(node, ConditionAND):
            rest, contained = self._substrings(_flatten(node, ConditionAND))
            predicates = [self.node(arg) for arg in rest]
            for name, parts in contained.items():
                predicates.append(_contains_all(self._field(name), parts))
            return _all(predicates)
        if isinstance(node, ConditionOR):
            args = _flatten(node, ConditionOR)
            if self._settled(args):
                return _always
            return self._membership(args) or _any(self._affixes(args))
        if isinstance(node, ConditionNOT):
            inner = self.node(node.args[0])
            return _not(inner)
        if isinstance(node, ConditionFieldEqualsValueExpression):
            if self._known_category is not None and node.field == CATEGORY_FIELD:
                literal = plain_literal(node.value)
                if literal is not None and literal.lower() == self._known_category:
                    return _always
            if self._settled([node]):
                return _always
            return self._leaf(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            raise RuleError("keyword search was not mapped to fields (apply the canhgac pipeline)")
        raise RuleError(f"unsupported condition element {type(node).__name__}")

    def _settled(self, args: Sequence[object]) -> bool:
        """True when `args` (alternatives) are plain values on the proven field, among them
        every value the proof allows: one of them holds for every event seen."""
        if self._proven is None:
            return False
        name, allowed = self._proven
        if not self._is_known_field(name):
            return False  # never settle what must be refused: _leaf reports the unknown field
        literals: set[str] = set()
        for arg in args:
            if not isinstance(arg, ConditionFieldEqualsValueExpression) or arg.field != name:
                return False
            literal = plain_literal(arg.value)
            if literal is None:
                return False
            literals.add(literal.lower())
        return allowed <= literals

    def _field(self, name: str) -> str:
        if not self._is_known_field(name):
            raise RuleError(f"unknown field '{name}' (not in the canhgac field vocabulary)")
        self.used.add(name)
        return name

    def _leaf(self, name: str, value: object) -> Predicate:
        key = self._field(name)
        if isinstance(value, SigmaNull):
            return lambda f: f.get(key) in (None, "")
        if isinstance(value, SigmaExists):
            if value.exists:
                return lambda f: key in f
            return lambda f: key not in f
        if isinstance(value, SigmaFieldReference):
            return _field_reference(key, self._field(value.field), value)
        if isinstance(value, SigmaString):
            fold, test = string_test(value)  # also refuses what cannot be evaluated
            shape = string_shape(value)
            if shape is not None:
                return _folded(key, *shape, test)
            return _on_text(key, fold, test)
        return _on_field(key, value_matcher(value))

    def _membership(self, args: Sequence[object]) -> Predicate | None:
        """A list of plain values on one field (the common `field: [a, b]`) as a set lookup."""
        if len(args) < 2:
            return None
        if all(
            isinstance(arg, ConditionFieldEqualsValueExpression) and type(arg.value) is SigmaNumber
            for arg in args
        ):
            return self._number_membership(args)
        names = set()
        literals = set()
        for arg in args:
            if not isinstance(arg, ConditionFieldEqualsValueExpression):
                return None
            literal = plain_literal(arg.value)
            if literal is None:
                return None
            names.add(arg.field)
            literals.add(literal.lower())
        if len(names) != 1:
            return None
        key = self._field(names.pop())
        members = frozenset(literals)
        return _folded(key, "in", members, members.__contains__)

    def _affixes(self, args: Sequence[object]) -> list[Predicate]:
        """The OR's parts, with `field|startswith: [a, b, ...]` (or endswith) on one field as one
        str.startswith(tuple) call instead of one closure per value."""
        groups: dict[tuple[str, str], list[str]] = {}
        rest: list[object] = []
        for arg in args:
            shape = (
                affix(arg.value) if isinstance(arg, ConditionFieldEqualsValueExpression) else None
            )
            if shape is None or not isinstance(arg, ConditionFieldEqualsValueExpression):
                rest.append(arg)
            else:
                groups.setdefault((arg.field, shape[0]), []).append(shape[1])
        rest, contained = self._substrings(rest)
        predicates = [self.node(arg) for arg in rest]
        for (name, kind), texts in groups.items():
            affixes = tuple(texts)
            predicates.append(_folded(self._field(name), kind, affixes, _affix_test(kind, affixes)))
        for name, parts in contained.items():
            predicates.append(_contains_any(self._field(name), parts))
        return predicates

    @staticmethod
    def _substrings(args: Sequence[object]) -> tuple[list[object], dict[str, tuple[str, ...]]]:
        """`args` without the case-insensitive `field|contains` leaves of fields that have two
        or more (`contains: [a, b]`, `contains|all`), and those substrings by field: one closure
        lower-cases the field once for all of them, instead of one closure and one lower() per
        substring. (Such a leaf compiles to the plain `contains` test in any context: it is no
        category test and no value the index proves, both plain literals.)"""
        found: dict[str, list[tuple[object, str]]] = {}
        for arg in args:
            if isinstance(arg, ConditionFieldEqualsValueExpression):
                shape = string_shape(arg.value)
                if shape is not None and shape[0] == "contains":
                    found.setdefault(arg.field, []).append((arg, shape[1]))
        grouped = {name: leaves for name, leaves in found.items() if len(leaves) > 1}
        if not grouped:
            return list(args), {}
        taken = {id(arg) for leaves in grouped.values() for arg, _ in leaves}
        rest = [arg for arg in args if id(arg) not in taken]
        return rest, {name: tuple(part for _, part in leaves) for name, leaves in grouped.items()}

    def _number_membership(self, args: Sequence[object]) -> Predicate | None:
        # `destination.port: [4444, 1337, ...]`: one set lookup instead of a matcher per port,
        # with number_matcher's equality (a numeric string matches, a bool never does).
        names = {arg.field for arg in args if isinstance(arg, ConditionFieldEqualsValueExpression)}
        if len(names) != 1:
            return None
        key = self._field(names.pop())
        numbers = frozenset(
            arg.value.number
            for arg in args
            if isinstance(arg, ConditionFieldEqualsValueExpression)
            and isinstance(arg.value, SigmaNumber)
        )

        def member(v: Any) -> bool:
            return number(v) in numbers

        return _on_field(key, member)


def _affix_test(kind: str, affixes: tuple[str, ...]) -> TextTest:
    if kind == "prefix":
        return lambda s: s.startswith(affixes)
    return lambda s: s.endswith(affixes)


def _flatten(node: ConditionItem, kind: type[ConditionAND] | type[ConditionOR]) -> list[object]:
    # "a and (b and c)" is one conjunction: one loop over three leaves, not nested closures.
    out: list[object] = []
    for arg in node.args:
        if isinstance(arg, kind):
            out.extend(_flatten(arg, kind))
        else:
            out.append(arg)
    return out


def _on_field(key: str, match: ValueMatcher) -> Predicate:
    def predicate(f: Mapping[str, Any]) -> bool:
        v = f.get(key)
        if v is None:
            return False
        if type(v) is list:
            return any(match(x) for x in v)
        return match(v)

    return predicate


def _folded(
    key: str, kind: str, operand: str | frozenset[str] | tuple[str, ...], test: TextTest
) -> Predicate:
    """A case-insensitive test of one shape (see matchers.string_shape; "in": a set of
    values) written out for a str field, the common case: the same as `_on_text(key, True,
    test)` without a call of `test` per event. Other values go through `test`."""
    if kind == "eq" and isinstance(operand, str):
        literal = operand

        def equal(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if type(v) is str:
                # Values usually come in the rules' case ("start", "failure"): equal as they are,
                # they are equal lower-cased (`literal` is), without the copy lower() makes.
                return v == literal or v.lower() == literal
            return v is not None and _folded_other(v, test)

        return shaped(equal, "eq", key, literal)
    if kind == "in" and isinstance(operand, frozenset):
        members = operand

        def member(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if type(v) is str:
                return v.lower() in members
            return v is not None and _folded_other(v, test)

        return shaped(member, "in", key, members)
    if kind == "contains" and isinstance(operand, str):
        part = operand

        def contains(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if type(v) is str:
                return part in v.lower()
            return v is not None and _folded_other(v, test)

        return shaped(contains, "contains", key, part)
    if kind == "prefix" and not isinstance(operand, frozenset):
        head = operand

        def prefix(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if type(v) is str:
                return v.lower().startswith(head)
            return v is not None and _folded_other(v, test)

        return shaped(prefix, "prefix", key, head)
    if kind == "suffix" and not isinstance(operand, frozenset):
        tail = operand

        def suffix(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if type(v) is str:
                return v.lower().endswith(tail)
            return v is not None and _folded_other(v, test)

        return shaped(suffix, "suffix", key, tail)
    return _on_text(key, True, test)


def _contains_any(key: str, parts: tuple[str, ...]) -> Predicate:
    """`key|contains: [parts]` (lower-cased parts): one of them in the field's text."""

    def test(s: str) -> bool:
        return any(part in s for part in parts)

    def contains_any(f: Mapping[str, Any]) -> bool:
        v = f.get(key)
        if type(v) is str:
            low = v.lower()
            for part in parts:  # noqa: SIM110  # as in every(): cheaper than any(<generator>)
                if part in low:
                    return True
            return False
        return v is not None and _folded_other(v, test)

    return shaped(contains_any, "any_part", key, parts)


def _contains_all(key: str, parts: tuple[str, ...]) -> Predicate:
    """`key|contains|all: [parts]` (lower-cased parts): each of them in the field's text; of a
    list, each in some element (as the separate tests it stands for decide)."""
    tests = [_contains_test(part) for part in parts]

    def contains_all(f: Mapping[str, Any]) -> bool:
        v = f.get(key)
        if type(v) is str:
            low = v.lower()
            for part in parts:  # noqa: SIM110  # as in every(): cheaper than all(<generator>)
                if part not in low:
                    return False
            return True
        return v is not None and all(_folded_other(v, test) for test in tests)

    return shaped(contains_all, "all_parts", key, parts)


def _contains_test(part: str) -> TextTest:
    return lambda s: part in s


def _folded_other(v: Any, test: TextTest) -> bool:
    # What _on_text's folded predicate does with a value that is not a str.
    if type(v) is list:
        return any(test(x.lower()) for x in v)
    return test(text(v).lower())


def _on_text(key: str, fold: bool, test: TextTest) -> Predicate:
    # String matching is most of what rules do, so the common case (a str field) is inlined.
    if fold:

        def folded(f: Mapping[str, Any]) -> bool:
            v = f.get(key)
            if v is None:
                return False
            if type(v) is str:
                return test(v.lower())
            if type(v) is list:
                return any(test(x.lower()) for x in v)
            return test(text(v).lower())

        return folded

    def cased(f: Mapping[str, Any]) -> bool:
        v = f.get(key)
        if v is None:
            return False
        if type(v) is str:
            return test(v)
        if type(v) is list:
            return any(test(x) for x in v)
        return test(text(v))

    return cased


def _field_reference(key: str, other: str, ref: SigmaFieldReference) -> Predicate:
    starts, ends = bool(ref.starts_with), bool(ref.ends_with)

    def predicate(f: Mapping[str, Any]) -> bool:
        a, b = f.get(key), f.get(other)
        if a is None or b is None or type(a) is list or type(b) is list:
            return False
        left, right = text(a).lower(), text(b).lower()
        if starts:
            return left.startswith(right)
        if ends:
            return left.endswith(right)
        return left == right

    return predicate


def _always(f: Mapping[str, Any]) -> bool:
    return True


def _never(f: Mapping[str, Any]) -> bool:
    return False


shaped(_always, "true")
shaped(_never, "false")


def _not(inner: Predicate) -> Predicate:
    if inner is _always:
        return _never
    return shaped(lambda f: not inner(f), "not", inner)


def _all(predicates: list[Predicate]) -> Predicate:
    predicates = [p for p in predicates if p is not _always]
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        a, b = predicates
        return shaped(lambda f: a(f) and b(f), "and", predicates)
    frozen = tuple(predicates)

    # A plain loop, not all(<generator>): it runs per event per rule and a generator costs more.
    def every(f: Mapping[str, Any]) -> bool:
        for p in frozen:  # noqa: SIM110
            if not p(f):
                return False
        return True

    return shaped(every, "and", predicates)


def _any(predicates: list[Predicate]) -> Predicate:
    if _always in predicates:
        return _always
    predicates = [p for p in predicates if p is not _never]
    if not predicates:
        return _never
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        a, b = predicates
        return shaped(lambda f: a(f) or b(f), "or", predicates)
    frozen = tuple(predicates)

    def some(f: Mapping[str, Any]) -> bool:
        for p in frozen:  # noqa: SIM110  # as in every(): cheaper than any(<generator>)
            if p(f):
                return True
        return False

    return shaped(some, "or", predicates)


def _categories(node: object) -> frozenset[str] | None:
    """The event.category values `node` requires, None when it does not constrain them."""
    if isinstance(node, ConditionAND):
        required: frozenset[str] | None = None
        for arg in node.args:
            c = _categories(arg)
            if c is not None:
                required = c if required is None else required & c
        return required
    if isinstance(node, ConditionOR):
        union: set[str] = set()
        for arg in node.args:
            c = _categories(arg)
            if c is None:
                return None
            union |= c
        return frozenset(union)
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == CATEGORY_FIELD:
        literal = plain_literal(node.value)
        return None if literal is None else frozenset({literal.lower()})
    return None
