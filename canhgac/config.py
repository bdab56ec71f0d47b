"""Configuration loading shared by both programs.

YAML is parsed with a loader that rejects duplicate keys (PyYAML silently keeps the last one),
then validated into frozen models that reject unknown keys (pydantic for the collector,
canhgac.strictmodel for the agent). Every error names the file,
the line when YAML knows it, and the dotted path of the bad key, e.g.
`collector.yaml: forwarders[1].url: Input should be a valid URL`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import yaml

from canhgac import strictmodel
from canhgac.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel, ConfigDict, ValidationError

    M = TypeVar("M", bound=BaseModel | strictmodel.StrictModel)

    class StrictModel(BaseModel):
        """Base of every collector config model: frozen, unknown keys rejected.

        Pydantic's lax mode is kept on purpose: YAML writes `port: "9440"` as easily as
        `port: 9440`, and both mean the same to an operator. (The agent's models use
        canhgac.strictmodel.StrictModel instead, with the same rules and messages.)
        """

        model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=True)

else:
    M = TypeVar("M")
    _PYDANTIC_MODEL: list[type] = []

    def _pydantic_strict_model() -> type:
        # Built on first use: importing pydantic costs about 20 MB, which the agent (whose
        # models are canhgac.strictmodel's) never pays.
        if not _PYDANTIC_MODEL:
            from pydantic import BaseModel, ConfigDict

            class StrictModel(BaseModel):
                """Base of every collector config model: frozen, unknown keys rejected.

                Pydantic's lax mode is kept on purpose: YAML writes `port: "9440"` as easily
                as `port: 9440`, and both mean the same to an operator.
                """

                model_config = ConfigDict(
                    extra="forbid", frozen=True, strict=False, validate_default=True
                )

            StrictModel.__module__ = __name__
            _PYDANTIC_MODEL.append(StrictModel)
        return _PYDANTIC_MODEL[0]

    def __getattr__(name: str) -> Any:
        if name == "StrictModel":
            return _pydantic_strict_model()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                location=f"line {key_node.start_mark.line + 1}",
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, *, source: str = "<string>") -> Any:
    """Parse YAML text, rejecting duplicate keys; errors name `source` and the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(exc.message, location=f"{source}:{exc.location}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"invalid YAML: {exc.problem}", location=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", location=source) from None


def error_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as `forwarders[1].url`."""
    return strictmodel.render_loc(loc)


def format_validation_error(exc: ValidationError | strictmodel.ValidationError) -> list[str]:
    return [f"{error_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]


def parse_model(model: type[M], data: Any, *, source: str) -> M:
    """Validate parsed data into `model`; all problems are reported at once."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys", location=source)
    try:
        return cast(M, model.model_validate(data))
    except strictmodel.ValidationError as exc:
        problems = format_validation_error(exc)
    except ValueError as exc:  # pydantic's ValidationError, without importing pydantic here
        if not hasattr(exc, "errors"):
            raise
        problems = format_validation_error(cast("ValidationError", exc))
    raise ConfigError("; ".join(problems), location=source) from None


def load_config(model: type[M], path: str | os.PathLike[str]) -> M:
    """Read, parse and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", location=str(p)) from None
    return parse_model(model, load_yaml(text, source=str(p)), source=str(p))
