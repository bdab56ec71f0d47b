"""A compiled rule's predicate written out as one Python function.

`compiler` builds a rule's predicate as a tree of closures: an AND of ORs of leaves such as
"event.action equals ssh_login" or "the command line contains one of these". Evaluating it
costs a Python call per node, which is most of what a candidate rule costs an event. The
closures the compiler builds for the common shapes carry a description of themselves
(`shaped`); `written_out` turns a tree of them into the source of one function, compiles it
once, and returns that instead, so an event pays one call per candidate rule.

Contract:
* The written function returns exactly what the tree returns, for every field dict: the
  connectives keep Python's short-circuit order, each leaf tests a str value as its closure
  does, and a leaf given any other value (a list, a number, None) calls its own closure. A
  node without a description (a regular expression, a number comparison, `exists`, a field
  reference) is called as it is.
* Only names the generator makes (`k0`, `c0`, `_v0` ...) and values it holds in the function's
  namespace appear in the source: no rule text is ever part of it.
* A tree too large or too deep to write out sensibly is returned unchanged.
"""

from __future__ import annotations

from typing import Any, Final

from collector.detection.base import Predicate

# Where a closure keeps its description: (kind, ...) as `_emit` reads it.
SHAPE_ATTR: Final = "canhgac_shape"
# Trees beyond these are left as closures: the source would be huge, or nest deeper than the
# parser allows (a Sigma condition flattens to a few levels; these are never reached by the
# public rules or ours).
MAX_NODES: Final = 400
MAX_DEPTH: Final = 40
# Substring lists longer than this stay one call of their closure: a written-out `or` of
# hundreds of `in` tests is no faster than the closure's loop.
MAX_INLINE_PARTS: Final = 24

Shape = tuple[Any, ...]


def shaped(predicate: Predicate, *shape: Any) -> Predicate:
    """Attach `shape` to `predicate` (a closure of the compiler) and return it.

    Shapes: ("true",), ("false",), ("and", [p ...]), ("or", [p ...]), ("not", p),
    ("eq", key, literal), ("in", key, frozenset), ("contains", key, part),
    ("prefix" | "suffix", key, str or tuple of str), ("any_part" | "all_parts", key, (part ...)).
    Literals and parts are lower case; a leaf's closure handles values other than str."""
    setattr(predicate, SHAPE_ATTR, shape)
    return predicate


def shape_of(predicate: Predicate) -> Shape | None:
    found: Shape | None = getattr(predicate, SHAPE_ATTR, None)
    return found


def written_out(predicate: Predicate) -> Predicate:
    """`predicate` as one generated function when it is a tree of described closures with at
    least one connective; otherwise `predicate` itself (see the module's contract)."""
    shape = shape_of(predicate)
    if shape is None or shape[0] not in ("and", "or", "not"):
        return predicate
    writer = _Writer()
    try:
        expression = writer.emit(predicate, 0)
    except _TooLargeError:
        return predicate
    namespace: dict[str, Any] = dict(writer.constants)
    source = f"def rule(f):\n    return {expression}\n"
    exec(source, namespace)  # noqa: S102  # generated names and held values only (contract)
    rule: Predicate = namespace["rule"]
    return rule


class _TooLargeError(Exception):
    pass


class _Writer:
    def __init__(self) -> None:
        self.constants: dict[str, object] = {}
        self._nodes = 0

    def _const(self, prefix: str, value: object) -> str:
        name = f"{prefix}{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, predicate: Predicate, depth: int) -> str:
        self._nodes += 1
        if self._nodes > MAX_NODES or depth > MAX_DEPTH:
            raise _TooLargeError
        shape = shape_of(predicate)
        if shape is None:
            return f"{self._const('c', predicate)}(f)"
        kind = shape[0]
        if kind == "true":
            return "True"
        if kind == "false":
            return "False"
        if kind in ("and", "or"):
            parts = [self.emit(p, depth + 1) for p in shape[1]]
            return "(" + f" {kind} ".join(parts) + ")"
        if kind == "not":
            return f"(not {self.emit(shape[1], depth + 1)})"
        return self._leaf(predicate, shape)

    def _leaf(self, predicate: Predicate, shape: Shape) -> str:
        kind, key = shape[0], shape[1]
        n = self._nodes
        v, low = f"_v{n}", f"_l{n}"
        if kind == "eq":
            literal = self._const("s", shape[2])
            # As the closure: equal as it is, else equal lower-cased (`literal` is).
            test = f"({v} == {literal} or {v}.lower() == {literal})"
        elif kind == "in":
            test = f"{v}.lower() in {self._const('m', shape[2])}"
        elif kind == "contains":
            test = f"{self._const('s', shape[2])} in {v}.lower()"
        elif kind == "prefix":
            test = f"{v}.lower().startswith({self._const('s', shape[2])})"
        elif kind == "suffix":
            test = f"{v}.lower().endswith({self._const('s', shape[2])})"
        elif kind in ("any_part", "all_parts") and len(shape[2]) <= MAX_INLINE_PARTS:
            names = [self._const("s", part) for part in shape[2]]
            joiner = " or " if kind == "any_part" else " and "
            first, rest = names[0], names[1:]
            # The first test lower-cases the value once for all of them.
            tests = [f"{first} in ({low} := {v}.lower())"] + [f"{s} in {low}" for s in rest]
            test = "(" + joiner.join(tests) + ")"
        else:
            return f"{self._const('c', predicate)}(f)"
        key_name = self._const("k", key)
        fallback = self._const("c", predicate)
        # A str value is tested here; anything else (None included) by the leaf's own closure.
        return f"({test} if type({v} := f.get({key_name})) is str else {fallback}(f))"
