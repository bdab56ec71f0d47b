"""Config loading: duplicate and unknown keys, bad values named by path, YAML errors by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from canhgac.config import StrictModel, error_path, load_config, load_yaml, parse_model
from canhgac.errors import ConfigError


class Url(StrictModel):
    url: str = Field(pattern=r"^https://")


class Root(StrictModel):
    name: str = "x"
    forwarders: list[Url] = Field(default_factory=list)
    port: int = Field(1, ge=1, le=65535)


def test_duplicate_key_is_refused_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("name: a\nport: 2\nname: b\n", source="c.yaml")
    assert str(info.value) == "c.yaml:line 3: duplicate key 'name' (first defined on line 1)"


def test_duplicate_key_in_nested_mapping() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'url'"):
        load_yaml("forwarders:\n  - url: a\n    url: b\n", source="c.yaml")


def test_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("name: [unclosed\nport: 1\n", source="c.yaml")
    assert str(info.value).startswith("c.yaml:")
    assert "invalid YAML" in str(info.value)


def test_unknown_key_is_refused_with_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(Root, {"forwarders": [{"url": "https://a", "urll": 1}]}, source="c.yaml")
    assert "forwarders[0].urll: Extra inputs are not permitted" in str(info.value)


def test_bad_value_names_the_path() -> None:
    data = {"forwarders": [{"url": "https://ok"}, {"url": "http://plain"}], "port": 0}
    with pytest.raises(ConfigError) as info:
        parse_model(Root, data, source="c.yaml")
    msg = str(info.value)
    assert msg.startswith("c.yaml: ")
    assert "forwarders[1].url:" in msg
    assert "port: Input should be greater than or equal to 1" in msg


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_model(Root, ["a"], source="c.yaml")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("")
    assert load_config(Root, f) == Root()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Root, tmp_path / "nope.yaml")


def test_models_are_frozen() -> None:
    r = Root()
    with pytest.raises(ValueError, match="frozen"):
        r.name = "y"  # type: ignore[misc]  # the point of the test


@pytest.mark.parametrize(
    ("loc", "expected"),
    [((), "(top level)"), (("a",), "a"), (("a", 1, "b"), "a[1].b"), (("a", "b", 0), "a.b[0]")],
)
def test_error_path(loc: tuple[int | str, ...], expected: str) -> None:
    assert error_path(loc) == expected
