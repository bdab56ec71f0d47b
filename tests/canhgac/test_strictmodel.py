"""canhgac.strictmodel: the agent's config models validate as they did with pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import pytest

from canhgac.config import parse_model
from canhgac.errors import ConfigError
from canhgac.strictmodel import (
    AfterValidator,
    Field,
    StrictModel,
    ValidationError,
    field_validator,
    model_validator,
)


def _even(n: int) -> int:
    if n % 2:
        raise ValueError(f"{n} is odd")
    return n


class Inner(StrictModel):
    port: int = Field(9440, ge=1, le=65535)
    name: str = Field("a", min_length=1, max_length=8, pattern=r"^[a-z]+$")


class Outer(StrictModel):
    level: Literal["info", "debug"] = "info"
    inner: Inner = Inner()
    inners: list[Inner] = Field(default_factory=list)
    by_name: dict[str, Inner] = Field(default_factory=dict)
    path: Path | None = None
    ratio: float = 0.5
    flag: bool = False
    pair: tuple[int, ...] = (1, 2)
    even: Annotated[int, AfterValidator(_even)] = 2
    paths: list[str] = Field(default_factory=lambda: ["/x"], min_length=1)
    required_after: int | None = None

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for p in paths:
            if not p.startswith("/"):
                raise ValueError(f"{p!r} is not an absolute path")
        return paths

    @model_validator(mode="after")
    def _consistent(self) -> Outer:
        if self.flag and self.path is None:
            raise ValueError("flag needs a path")
        return self


class Required(StrictModel):
    url: str = Field(pattern=r"^https://")


def test_defaults_and_lax_scalars() -> None:
    m = Outer.model_validate(
        {
            "inner": {"port": "8080"},
            "ratio": "0.25",
            "flag": "yes",
            "path": "/etc/x",
            "pair": [3, "4"],
            "even": 4.0,
        }
    )
    assert m.inner.port == 8080
    assert m.ratio == 0.25
    assert m.flag is True
    assert m.path == Path("/etc/x")
    assert m.pair == (3, 4)
    assert m.even == 4
    assert m.paths == ["/x"]
    assert Outer() == Outer.model_validate({})
    assert Inner(port=1).port == 1


def test_all_errors_at_once_with_dotted_paths() -> None:
    data = {
        "level": "trace",
        "inner": {"port": 0, "nme": "x"},
        "inners": [{"port": 1}, {"port": "many"}, {"name": "ABC"}],
        "by_name": {"a": {"port": 70000}},
        "paths": ["/ok", "rel"],
        "even": 3,
        "pair": "nope",
    }
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(data)
    got = {(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()}
    assert got == {
        ("level", "Input should be 'info' or 'debug'"),
        ("inner.port", "Input should be greater than or equal to 1"),
        ("inner.nme", "Extra inputs are not permitted"),
        ("inners.1.port", "Input should be a valid integer, unable to parse string as an integer"),
        ("inners.2.name", "String should match pattern '^[a-z]+$'"),
        ("by_name.a.port", "Input should be less than or equal to 65535"),
        ("paths", "Value error, 'rel' is not an absolute path"),
        ("even", "Value error, 3 is odd"),
        ("pair", "Input should be a valid tuple"),
    }


def test_parse_model_renders_paths_like_pydantic_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(Outer, {"inners": [{}, {"port": 1.5}], "flag": "maybe"}, source="a.yaml")
    msg = str(info.value)
    assert msg.startswith("a.yaml: ")
    assert "inners[1].port: Input should be a valid integer, got a number with a fractional" in msg
    assert "flag: Input should be a valid boolean, unable to interpret input" in msg


def test_model_validator_runs_after_fields_and_names_the_model() -> None:
    with pytest.raises(ConfigError, match=r"a.yaml: \(top level\): Value error, flag needs a path"):
        parse_model(Outer, {"flag": True}, source="a.yaml")


def test_required_field_and_min_length() -> None:
    with pytest.raises(ValidationError) as info:
        Required.model_validate({})
    assert info.value.errors() == [{"loc": ("url",), "msg": "Field required"}]
    with pytest.raises(ValidationError, match="List should have at least 1 item"):
        Outer.model_validate({"paths": []})
    with pytest.raises(ValidationError, match="Input should be a valid string"):
        Required.model_validate({"url": 5})


def test_frozen_hashable_copy_and_dump() -> None:
    m = Outer.model_validate({"path": "/p", "inners": [{}]})
    with pytest.raises(TypeError, match="frozen"):
        m.level = "debug"
    assert hash(Inner()) == hash(Inner(port="9440"))
    changed = m.model_copy(update={"level": "debug"})
    assert changed.level == "debug"
    assert m.level == "info"
    dumped = m.model_dump(mode="json", exclude_none=True)
    assert dumped["path"] == "/p"
    assert dumped["inners"] == [{"port": 9440, "name": "a"}]
    assert dumped["pair"] == [1, 2]
    assert "required_after" not in dumped
    assert Outer.model_validate(dumped) == m


def test_agent_modules_load_no_pydantic() -> None:
    """The agent's configuration and runtime leave pydantic unloaded (about 20 MB)."""
    code = (
        "import sys, agent.runtime, agent.config as c;"
        "c.AgentConfig.model_validate({'collector': {'ca_file': '/x'}});"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


class Numbers(StrictModel):
    count: int = 0
    ratio: float = 0.0


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("count", "1e3"),  # pydantic reads an int from integer text only
        ("count", "_1"),
        ("count", "1__0"),
        ("count", "1_"),
        ("count", "1."),
        ("count", "\u0663"),  # ARABIC-INDIC DIGIT THREE: int() reads it, pydantic does not
        ("ratio", "\u0663.5"),
    ],
)
def test_number_text_pydantic_refuses_is_refused(field: str, text: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Numbers.model_validate({field: text})


@pytest.mark.parametrize(
    ("text", "value"),
    [(" 7 ", 7), ("+1", 1), ("-3", -3), ("1_000", 1000), ("1.00", 1), ("1_0.0", 10), ("012", 12)],
)
def test_integer_text_pydantic_reads_is_read(text: str, value: int) -> None:
    assert Numbers.model_validate({"count": text}).count == value
