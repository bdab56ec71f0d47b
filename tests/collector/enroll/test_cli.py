"""`canhgac-collector tokens ...` and `agents revoke`, against a store on disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collector import cli


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "collector.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\ningest: {{revocation_poll_ms: 1500}}\n")
    (tmp_path / "state").mkdir()
    return str(path)


def test_tokens_create_prints_the_token_once_and_list_never_does(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--system", "portal", "--agent-id", "web-01", "--ttl", "2h", "--config", config]
    assert cli.main(["tokens", "create", *args]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert re.fullmatch(r"cgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    token_id, secret = token.split("_", 2)[1:]
    assert f"token {token_id}: single use" in err
    assert "agent id web-01, system portal" in err
    assert secret not in err

    assert cli.main(["tokens", "list", "--config", config]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing
    assert "unused" in listing
    assert "system=portal" in listing
    assert secret not in listing
    assert cli.main(["tokens", "list", "--json", "--config", config]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["id"], row["state"], row["agent_id"]) == (token_id, "unused", "web-01")
    assert secret not in json.dumps(row)
    db = (Path(config).parent / "state" / "collector.db").read_bytes()
    assert secret.encode() not in db

    assert cli.main(["tokens", "revoke", token_id, "--config", config]) == 0
    assert f"token {token_id} revoked" in capsys.readouterr().out
    assert cli.main(["tokens", "revoke", token_id, "--config", config]) == 2
    assert "already revoked" in capsys.readouterr().err
    assert cli.main(["tokens", "revoke", "nope", "--config", config]) == 2
    assert "unknown" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--ttl", "forever", "--ttl: duration 'forever' must be a number and a unit"),
        ("--agent-id", "../etc", "--agent-id: must be 1-64 characters"),
        ("--agent-id", "a" * 65, "--agent-id: must be 1-64 characters"),
        ("--system", "a b", "--system: must be 1-128 characters"),
    ],
)
def test_tokens_create_refuses_bad_options(
    config: str, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    assert cli.main(["tokens", "create", option, value, "--config", config]) == 2
    assert message in capsys.readouterr().err


def test_revoking_an_unknown_agent_fails(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["agents", "revoke", "ghost", "--config", config]) == 2
    assert "unknown agent 'ghost'" in capsys.readouterr().err


def test_tokens_list_says_when_there_are_none(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tokens", "list", "--config", config]) == 0
    assert capsys.readouterr().out == "no tokens\n"
