"""A small strict configuration model: what the agent's configuration needs, without pydantic.

pydantic and pydantic_core cost the long-running agent about 20 MB of memory for a file that
is read once at start. This module validates the same model declarations the agent used with
pydantic (a class with annotated fields, `Field(...)` constraints, `field_validator`,
`model_validator(mode="after")`, `Annotated[T, AfterValidator(f)]`) with the same rules:

- unknown keys are rejected, instances are frozen, defaults are validated too;
- pydantic's lax mode for scalars: `"9440"` and `9440.0` are the integer 9440, `"yes"` and
  `"true"` are True, a string is a Path;
- every problem is reported at once, each with its location (`sources.fim.paths[2]`) and
  pydantic's wording ("Input should be greater than or equal to 1"), so an operator sees the
  same messages from the agent and from the collector (which keeps pydantic).

Supported field types: int, float, str, bool, Path, Literal[...], `X | None`, list[X],
tuple[X, ...], dict[K, V], nested StrictModel classes, Annotated[...] of those, and Any.
A type outside that list is refused when the class is first used, not silently accepted.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")
M = TypeVar("M", bound="StrictModel")
Loc = tuple[int | str, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FieldInfo:
    """A field's default and constraints (`Field(...)`)."""

    __slots__ = (
        "default",
        "default_factory",
        "ge",
        "gt",
        "le",
        "lt",
        "max_length",
        "min_length",
        "pattern",
    )

    def __init__(
        self,
        default: Any = MISSING,
        *,
        default_factory: Callable[[], Any] | None = None,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        lt: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
    ) -> None:
        if default is not MISSING and default_factory is not None:
            raise TypeError("a field takes default or default_factory, not both")
        self.default = default
        self.default_factory = default_factory
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.min_length, self.max_length = min_length, max_length
        self.pattern = re.compile(pattern) if pattern is not None else None


def Field(  # noqa: N802  # named like pydantic's, so model declarations read the same
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
) -> Any:
    """A field's default (or default_factory) and constraints."""
    return FieldInfo(
        default,
        default_factory=default_factory,
        ge=ge,
        gt=gt,
        le=le,
        lt=lt,
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
    )


class AfterValidator:
    """`Annotated[T, AfterValidator(f)]`: f(value) after T is validated; ValueError refuses."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


class _FieldValidator:
    def __init__(self, fields: tuple[str, ...], func: Any) -> None:
        self.fields = fields
        self.func = func


class _ModelValidator:
    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


def field_validator(*fields: str, mode: Literal["after"] = "after") -> Callable[[T], T]:
    """Decorates a classmethod run on the named fields' values after their type is checked."""
    if mode != "after":
        raise TypeError("only mode='after' field validators are supported")

    def mark(func: T) -> T:
        return typing.cast(T, _FieldValidator(fields, func))

    return mark


def model_validator(*, mode: Literal["after"]) -> Callable[[T], T]:
    """Decorates a method run on the instance once every field is valid; returns self."""
    if mode != "after":
        raise TypeError("only mode='after' model validators are supported")

    def mark(func: T) -> T:
        return typing.cast(T, _ModelValidator(typing.cast(Callable[[Any], Any], func)))

    return mark


class ValidationError(ValueError):
    """All the problems found in one input, each with its location."""

    def __init__(self, title: str, problems: list[tuple[Loc, str]]) -> None:
        self.title = title
        self.problems = problems
        super().__init__(str(self))

    def errors(self) -> list[dict[str, Any]]:
        return [{"loc": loc, "msg": msg} for loc, msg in self.problems]

    def __str__(self) -> str:
        n = len(self.problems)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for loc, msg in self.problems:
            lines.append(f"{render_loc(loc)}\n  {msg}")
        return "\n".join(lines)


def render_loc(loc: Loc) -> str:
    """`('forwarders', 1, 'url')` -> `forwarders[1].url`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class _InvalidError(Exception):
    """A value refused at one location (collected, never escapes this module)."""


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, msg: str) -> None:
        self.items.append((loc, msg))


# pydantic's integer text: ASCII digits, single underscores between them, a zero fraction.
_INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")

_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def _num(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class _Field:
    __slots__ = ("info", "name", "tp", "validators")

    def __init__(self, name: str, tp: Any, info: FieldInfo) -> None:
        self.name = name
        self.tp = tp
        self.info = info
        self.validators: list[Callable[[Any], Any]] = []

    def default(self) -> Any:
        if self.info.default_factory is not None:
            return self.info.default_factory()
        return self.info.default


def _check_constraints(value: Any, info: FieldInfo, loc: Loc, errs: _Errors) -> bool:
    ok = True
    if isinstance(value, int | float) and not isinstance(value, bool):
        if info.ge is not None and not value >= info.ge:
            errs.add(loc, f"Input should be greater than or equal to {_num(info.ge)}")
            ok = False
        if info.gt is not None and not value > info.gt:
            errs.add(loc, f"Input should be greater than {_num(info.gt)}")
            ok = False
        if info.le is not None and not value <= info.le:
            errs.add(loc, f"Input should be less than or equal to {_num(info.le)}")
            ok = False
        if info.lt is not None and not value < info.lt:
            errs.add(loc, f"Input should be less than {_num(info.lt)}")
            ok = False
    if isinstance(value, str):
        if info.min_length is not None and len(value) < info.min_length:
            errs.add(loc, f"String should have at least {_plural(info.min_length, 'character')}")
            ok = False
        if info.max_length is not None and len(value) > info.max_length:
            errs.add(loc, f"String should have at most {_plural(info.max_length, 'character')}")
            ok = False
        if info.pattern is not None and not info.pattern.search(value):
            errs.add(loc, f"String should match pattern '{info.pattern.pattern}'")
            ok = False
    elif isinstance(value, list | tuple | dict):
        kind = "Dictionary" if isinstance(value, dict) else type(value).__name__.capitalize()
        n = len(value)
        if info.min_length is not None and n < info.min_length:
            errs.add(
                loc,
                f"{kind} should have at least {_plural(info.min_length, 'item')} "
                f"after validation, not {n}",
            )
            ok = False
        if info.max_length is not None and n > info.max_length:
            errs.add(
                loc,
                f"{kind} should have at most {_plural(info.max_length, 'item')} "
                f"after validation, not {n}",
            )
            ok = False
    return ok


def _validate(tp: Any, value: Any, loc: Loc, errs: _Errors) -> Any:
    """`value` as type `tp`; raises _InvalidError after recording why."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        out = _validate(base, value, loc, errs)
        for m in meta:
            if isinstance(m, FieldInfo):
                if not _check_constraints(out, m, loc, errs):
                    raise _InvalidError
            elif isinstance(m, AfterValidator):
                out = _call_validator(m.func, out, loc, errs)
        return out
    if tp is Any:
        return value
    if origin is types.UnionType or origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _validate(rest[0], value, loc, errs)
        # A union of several types: the first that accepts the value, without its errors.
        for arg in rest:
            try:
                return _validate(arg, value, loc, _Errors())
            except _InvalidError:
                continue
        errs.add(loc, f"Input should be one of: {', '.join(_type_name(a) for a in rest)}")
        raise _InvalidError
    if origin is Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            if value == a and type(value) is type(a):
                return a
        words = [repr(a) for a in allowed]
        listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        errs.add(loc, f"Input should be {listed}")
        raise _InvalidError
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            errs.add(loc, f"Input should be a valid {origin.__name__}")
            raise _InvalidError
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                errs.add(loc, f"Tuple should have {_plural(len(args), 'item')}, not {len(value)}")
                raise _InvalidError
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        out_items: list[Any] = []
        bad = False
        for i, (item_tp, item) in enumerate(zip(item_types, value, strict=True)):
            try:
                out_items.append(_validate(item_tp, item, (*loc, i), errs))
            except _InvalidError:
                bad = True
        if bad:
            raise _InvalidError
        return out_items if origin is list else tuple(out_items)
    if origin is dict:
        if not isinstance(value, dict):
            errs.add(loc, "Input should be a valid dictionary")
            raise _InvalidError
        args = typing.get_args(tp)
        key_tp, val_tp = args if args else (Any, Any)
        out_map: dict[Any, Any] = {}
        bad = False
        for k, v in value.items():
            try:
                key = _validate(key_tp, k, (*loc, f"{k}[key]"), errs)
                out_map[key] = _validate(val_tp, v, (*loc, str(k)), errs)
            except _InvalidError:
                bad = True
        if bad:
            raise _InvalidError
        return out_map
    if isinstance(tp, type) and issubclass(tp, StrictModel):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            errs.add(loc, f"Input should be a valid dictionary or instance of {tp.__name__}")
            raise _InvalidError
        return tp._validate_dict(value, loc, errs)
    if tp is bool:
        return _bool(value, loc, errs)
    if tp is int:
        return _int(value, loc, errs)
    if tp is float:
        return _float(value, loc, errs)
    if tp is str:
        if isinstance(value, str):
            return value
        errs.add(loc, "Input should be a valid string")
        raise _InvalidError
    if tp is Path:
        if isinstance(value, PurePath):
            return Path(value)
        if isinstance(value, str):
            return Path(value)
        errs.add(loc, "Input should be a valid path")
        raise _InvalidError
    # A pydantic model nested in a StrictModel (a source configuration not yet switched).
    validate = getattr(tp, "model_validate", None)
    if validate is not None:
        return _foreign_model(tp, validate, value, loc, errs)
    raise TypeError(f"strictmodel does not support the field type {tp!r}")


def _foreign_model(tp: Any, validate: Any, value: Any, loc: Loc, errs: _Errors) -> Any:
    if isinstance(value, tp):
        return value
    try:
        return validate(value)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        nested = getattr(exc, "errors", None)
        if nested is None:
            errs.add(loc, str(exc))
        else:
            for e in nested():
                errs.add((*loc, *e["loc"]), str(e["msg"]))
        raise _InvalidError from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def _bool(value: Any, loc: Loc, errs: _Errors) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        errs.add(loc, "Input should be a valid boolean, unable to interpret input")
        raise _InvalidError
    errs.add(loc, "Input should be a valid boolean")
    raise _InvalidError


def _int(value: Any, loc: Loc, errs: _Errors) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        errs.add(loc, "Input should be a valid integer, got a number with a fractional part")
        raise _InvalidError
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            return int(text.partition(".")[0])
        errs.add(loc, "Input should be a valid integer, unable to parse string as an integer")
        raise _InvalidError
    errs.add(loc, "Input should be a valid integer")
    raise _InvalidError


def _float(value: Any, loc: Loc, errs: _Errors) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            if not value.isascii():  # float() reads other scripts' digits, pydantic does not
                raise ValueError(value)
            return float(value.strip())
        except ValueError:
            errs.add(loc, "Input should be a valid number, unable to parse string as a number")
            raise _InvalidError from None
    errs.add(loc, "Input should be a valid number")
    raise _InvalidError


def _call_validator(func: Callable[[Any], Any], value: Any, loc: Loc, errs: _Errors) -> Any:
    try:
        return func(value)
    except ValueError as exc:
        errs.add(loc, f"Value error, {exc}")
    except AssertionError as exc:
        errs.add(loc, f"Assertion failed, {exc}")
    raise _InvalidError


def _own_annotations(klass: type) -> Iterator[tuple[str, Any]]:
    raw = inspect.get_annotations(klass)
    hints = typing.get_type_hints(klass, include_extras=True)
    for name in raw:
        tp = hints[name]
        if typing.get_origin(tp) is ClassVar or name.startswith("_"):
            continue
        yield name, tp


class StrictModel:
    """Base of the agent's config models: frozen, unknown keys rejected, lax scalars."""

    __strict_fields__: ClassVar[dict[str, _Field] | None] = None
    __strict_model_validators__: ClassVar[list[Callable[[Any], Any]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__strict_fields__ = None  # resolved on first use: the types may be defined later

    @classmethod
    def _fields(cls) -> dict[str, _Field]:
        fields = cls.__dict__.get("__strict_fields__")
        if fields is not None:
            return typing.cast(dict[str, _Field], fields)
        fields = {}
        model_validators: list[Callable[[Any], Any]] = []
        klasses = [k for k in reversed(cls.__mro__) if issubclass(k, StrictModel)]
        for klass in klasses:
            for name, tp in _own_annotations(klass):
                raw = klass.__dict__.get(name, MISSING)
                info = raw if isinstance(raw, FieldInfo) else FieldInfo(raw)
                fields[name] = _Field(name, tp, info)
        for klass in klasses:
            for attr in klass.__dict__.values():
                if isinstance(attr, _FieldValidator):
                    func = attr.func
                    bound = func.__get__(None, cls) if isinstance(func, classmethod) else func
                    for name in attr.fields:
                        if name not in fields:
                            raise TypeError(f"{cls.__name__}: validator for unknown field {name}")
                        fields[name].validators.append(bound)
                elif isinstance(attr, _ModelValidator):
                    model_validators.append(attr.func)
        cls.__strict_model_validators__ = model_validators
        cls.__strict_fields__ = fields
        return fields

    @classmethod
    def _validate_dict(cls: type[M], data: dict[Any, Any], loc: Loc, errs: _Errors) -> M:
        fields = cls._fields()
        values: dict[str, Any] = {}
        bad = False
        for key in data:
            if key not in fields:
                errs.add((*loc, str(key)), "Extra inputs are not permitted")
                bad = True
        for name, f in fields.items():
            where = (*loc, name)
            if name in data:
                raw = data[name]
            else:
                raw = f.default()
                if raw is MISSING:
                    errs.add(where, "Field required")
                    bad = True
                    continue
            try:
                value = _validate(f.tp, raw, where, errs)
                if not _check_constraints(value, f.info, where, errs):
                    raise _InvalidError
                for v in f.validators:
                    value = _call_validator(v, value, where, errs)
                values[name] = value
            except _InvalidError:
                bad = True
        if bad:
            raise _InvalidError
        inst = cls.__new__(cls)
        for name, value in values.items():
            object.__setattr__(inst, name, value)
        for mv in cls.__strict_model_validators__:
            try:
                mv(inst)
            except ValueError as exc:
                errs.add(loc, f"Value error, {exc}")
                raise _InvalidError from None
            except AssertionError as exc:
                errs.add(loc, f"Assertion failed, {exc}")
                raise _InvalidError from None
        return inst

    @classmethod
    def model_validate(cls: type[M], data: Any) -> M:
        """Validate a mapping (or return an instance as is); ValidationError lists every
        problem."""
        if isinstance(data, cls):
            return data
        errs = _Errors()
        if not isinstance(data, dict):
            errs.add((), f"Input should be a valid dictionary or instance of {cls.__name__}")
            raise ValidationError(cls.__name__, errs.items)
        try:
            return cls._validate_dict(data, (), errs)
        except _InvalidError:
            raise ValidationError(cls.__name__, errs.items) from None

    @classmethod
    def model_construct(cls: type[M], **values: Any) -> M:
        """An instance without validation (tests); missing fields take their defaults."""
        inst = cls.__new__(cls)
        for name, f in cls._fields().items():
            object.__setattr__(inst, name, values[name] if name in values else f.default())
        return inst

    def __init__(self, **data: Any) -> None:
        inst = type(self).model_validate(data)
        for name in type(self)._fields():
            object.__setattr__(self, name, getattr(inst, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: {name} cannot be changed")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: {name} cannot be deleted")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in type(self)._fields())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, StrictModel)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self)._fields())
        return f"{type(self).__name__}({parts})"

    def model_copy(self: M, *, update: dict[str, Any] | None = None) -> M:
        """A copy with `update` applied, not validated (as pydantic's model_copy)."""
        inst = type(self).__new__(type(self))
        for name in type(self)._fields():
            object.__setattr__(inst, name, getattr(self, name))
        for name, value in (update or {}).items():
            if name not in type(self)._fields():
                raise TypeError(f"{type(self).__name__} has no field {name}")
            object.__setattr__(inst, name, value)
        return inst

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", exclude_none: bool = False
    ) -> dict[str, Any]:
        """The fields as plain data; mode="json" turns paths into strings, tuples into lists."""
        out: dict[str, Any] = {}
        for name in type(self)._fields():
            value = getattr(self, name)
            if exclude_none and value is None:
                continue
            out[name] = _dump(value, mode, exclude_none)
        return out


def _dump(value: Any, mode: str, exclude_none: bool) -> Any:
    if isinstance(value, StrictModel):
        return value.model_dump(mode=typing.cast(Any, mode), exclude_none=exclude_none)
    if isinstance(value, dict):
        return {k: _dump(v, mode, exclude_none) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v, mode, exclude_none) for v in value]
    if isinstance(value, tuple):
        items = [_dump(v, mode, exclude_none) for v in value]
        return items if mode == "json" else tuple(items)
    if mode == "json" and isinstance(value, PurePath):
        return str(value)
    dump = getattr(value, "model_dump", None)  # a nested pydantic model
    if dump is not None:
        return dump(mode=mode, exclude_none=exclude_none)
    return value
