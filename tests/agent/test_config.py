"""The agent's configuration model and its shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import cli
from agent.config import AgentConfig, example_text
from canhgac.config import load_yaml, parse_model
from canhgac.errors import ConfigError


def test_example_validates(tmp_path: Path) -> None:
    cfg = parse_model(AgentConfig, load_yaml(example_text()), source="example")
    assert cfg.agent_id == "web-01"
    f = tmp_path / "a.yaml"
    f.write_text(example_text())
    assert cli.main(["validate", "--config", str(f)]) == 0


def test_example_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["example"]) == 0
    assert capsys.readouterr().out == example_text()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"collector": {"address": "x:0", "ca_file": "/ca"}}, "collector.address"),
        ({"collector": {"address": "x:1"}}, "ca_file is required"),
        ({"agent_id": "bad id"}, "agent_id"),
        ({"shipper": {"batch_max_events": 0}}, "shipper.batch_max_events"),
        ({"sources": {"authlog": {"paths": "notalist"}}}, "sources.authlog.paths"),
        ({"sources": {"nosuch": {}}}, "sources.nosuch"),
    ],
)
def test_bad_values_are_refused_with_their_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model(AgentConfig, data, source="a.yaml")


def test_insecure_dev_needs_no_ca() -> None:
    cfg = parse_model(
        AgentConfig, {"collector": {"address": "h:1", "insecure_dev": True}}, source="a.yaml"
    )
    assert cfg.collector.ca_file is None


def test_agent_id_defaults_to_hostname() -> None:
    import socket

    cfg = parse_model(AgentConfig, {}, source="a.yaml")
    assert cfg.resolved_agent_id() == socket.gethostname().split(".")[0]
