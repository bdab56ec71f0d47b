"""Value matchers: one pySigma value (SigmaString, SigmaNumber, regex, CIDR ...) compiled once
into a plain function over one field value.

Semantics (Sigma's, applied to our flat field dict):

* Strings compare case-insensitively unless the `cased` modifier was used; `*` and `?` are
  wildcards. Non-string field values are compared by their text (`true`, `22`).
* `re` searches (unanchored, as most Sigma backends do); anchor with `^`/`$` in the rule.
  Regexes are case-sensitive unless the `i` modifier is given, as the Sigma spec says.
* Numbers and `gt/gte/lt/lte` compare numerically; a string field value that is not a number
  never matches.
* `cidr` matches IPv4 and IPv6 addresses inside the network.
* A list-valued field (process.args, dns.answers.data ...) matches if any element matches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final

from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from canhgac.errors import RuleError

# Matches one (non-list) field value.
ValueMatcher = Callable[[Any], bool]


def text(value: Any) -> str:
    """A field value as the text Sigma string matching sees."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def plain_literal(value: Any) -> str | None:
    """The literal of a case-insensitive SigmaString without wildcards, else None."""
    if type(value) is not SigmaString:
        return None
    parts = value.s
    if len(parts) == 0:
        return ""
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    return None


def affix(value: Any) -> tuple[str, str] | None:
    """("prefix", text) for a case-insensitive `text*`, ("suffix", text) for `*text` (text
    lower-cased, without other wildcards), else None: the shapes an OR can test in one call."""
    if type(value) is not SigmaString:
        return None
    parts = value.s
    if len(parts) != 2:
        return None
    first, second = parts
    if isinstance(first, str) and second is SpecialChars.WILDCARD_MULTI:
        return ("prefix", first.lower())
    if first is SpecialChars.WILDCARD_MULTI and isinstance(second, str):
        return ("suffix", second.lower())
    return None


def string_shape(value: Any) -> tuple[str, str] | None:
    """The shape of a case-insensitive SigmaString that one str operation tests, with its
    lower-cased text: ("eq", t) for `t`, ("contains", t) for `*t*`, ("prefix", t) for `t*`,
    ("suffix", t) for `*t` (t without wildcards); None for any other value."""
    literal = plain_literal(value)
    if literal is not None:
        return ("eq", literal.lower())
    found = affix(value)
    if found is not None:
        return found
    if type(value) is not SigmaString:
        return None
    parts = value.s
    star = SpecialChars.WILDCARD_MULTI
    if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
        return ("contains", parts[1].lower())
    return None


# A test on a field's text, already lower-cased when the match is case-insensitive.
TextTest = Callable[[str], bool]


def string_test(value: SigmaString) -> tuple[bool, TextTest]:
    """(fold, test) for equality with wildcards: `test` gets the field text, lower-cased first
    when `fold`, and is specialised to ==, in, startswith, endswith or a compiled regex."""
    fold = not isinstance(value, SigmaCasedString)
    parts: list[Any] = list(value.s)
    for part in parts:
        if not isinstance(part, (str, SpecialChars)):
            raise RuleError(f"unresolved placeholder in value '{value}' (expand is unsupported)")
    star = SpecialChars.WILDCARD_MULTI
    strs = [p.lower() if fold else p for p in parts if isinstance(p, str)]
    lit = strs[0] if len(strs) == 1 else ""
    if not parts:
        return fold, "".__eq__
    if len(parts) == 1 and strs:
        return fold, lit.__eq__
    if parts == [star]:
        return fold, lambda s: True
    if len(parts) == 3 and parts[0] is star and parts[2] is star and len(strs) == 1:
        return fold, lambda s: lit in s
    if len(parts) == 2 and parts[1] is star and len(strs) == 1:
        return fold, lambda s: s.startswith(lit)
    if len(parts) == 2 and parts[0] is star and len(strs) == 1:
        return fold, lambda s: s.endswith(lit)
    pattern = "".join(
        re.escape(p) if isinstance(p, str) else (".*" if p is star else ".") for p in parts
    )
    flags = re.DOTALL | re.IGNORECASE if fold else re.DOTALL
    regex = re.compile(pattern, flags)
    return False, lambda s: regex.fullmatch(s) is not None


def string_matcher(value: SigmaString) -> ValueMatcher:
    fold, test = string_test(value)
    if fold:
        return lambda v: test(text(v).lower())
    return lambda v: test(text(v))


def regex_matcher(value: SigmaRegularExpression) -> ValueMatcher:
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    try:
        regex = re.compile(str(value.regexp), flags)
    except re.error as exc:
        raise RuleError(f"invalid regular expression '{value.regexp}': {exc}") from exc
    return lambda v: regex.search(text(v)) is not None


def number(value: Any) -> int | float | None:
    """A field value as a number, None when it is not one (bools are not numbers here).

    Ints stay ints: nanosecond timestamps lose precision as floats.
    """
    kind = type(value)
    if kind is int or kind is float:
        # `value` is Any; the type() test above is the check. cast() would add a call on the
        # per-event path for nothing.
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


def number_matcher(value: SigmaNumber) -> ValueMatcher:
    expected: int | float = value.number

    def match(v: Any) -> bool:
        n = number(v)
        return n is not None and n == expected

    return match


_COMPARE: Final[dict[Any, Callable[[int | float, int | float], bool]]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def compare_matcher(value: SigmaCompareExpression) -> ValueMatcher:
    op = _COMPARE.get(value.op)
    if op is None:
        raise RuleError(f"unsupported comparison operator {value.op}")
    bound: int | float = value.number.number

    def match(v: Any) -> bool:
        n = number(v)
        return n is not None and op(n, bound)

    return match


def bool_matcher(value: SigmaBool) -> ValueMatcher:
    expected = bool(value.boolean)
    as_text = "true" if expected else "false"
    return lambda v: v is expected if type(v) is bool else text(v).lower() == as_text


def cidr_matcher(value: SigmaCIDRExpression) -> ValueMatcher:
    network = value.network

    def match(v: Any) -> bool:
        try:
            return ipaddress.ip_address(text(v)) in network
        except ValueError:
            return False

    return match


def expansion_matcher(value: SigmaExpansion) -> ValueMatcher:
    # Values expanded by a modifier (base64offset, windash) are alternatives of one another.
    matchers = tuple(value_matcher(v) for v in value.values)
    return lambda v: any(m(v) for m in matchers)


def value_matcher(value: Any) -> ValueMatcher:
    """The matcher for one pySigma value; RuleError names any value type we cannot evaluate."""
    # Order matters: SigmaTimestampPart is a SigmaNumber, SigmaCasedString a SigmaString.
    if isinstance(value, SigmaTimestampPart):
        raise RuleError("timestamp part modifiers (minute, hour, day ...) are unsupported")
    for kind, build in _BUILDERS:
        if isinstance(value, kind):
            return build(value)
    raise RuleError(f"unsupported value type {type(value).__name__} ('{value}')")


_BUILDERS: Final[tuple[tuple[type, Callable[[Any], ValueMatcher]], ...]] = (
    (SigmaString, string_matcher),
    (SigmaRegularExpression, regex_matcher),
    (SigmaCompareExpression, compare_matcher),
    (SigmaNumber, number_matcher),
    (SigmaBool, bool_matcher),
    (SigmaCIDRExpression, cidr_matcher),
    (SigmaExpansion, expansion_matcher),
)
