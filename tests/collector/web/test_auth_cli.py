from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from collector.web.auth_cli import add_auth_commands


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", type=Path)
        return sp

    add_auth_commands(sub, with_config)
    ns = parser.parse_args(argv)
    rc: int = ns.fn(ns)
    return rc


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "collector.yaml"
    (tmp_path / "state").mkdir()
    path.write_text(f"state_dir: {tmp_path / 'state'}\n")
    return str(path)


def test_users_add_list_disable(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("mật khẩu đủ dài 123\n")
    assert (
        run(
            "users",
            "add",
            "lan",
            "--role",
            "soc",
            "--system",
            "portal",
            "--password-file",
            str(secret),
            "-c",
            config,
        )
        == 0
    )
    assert run("users", "list", "--json", "-c", config) == 0
    out = capsys.readouterr().out
    row = json.loads(out.strip().splitlines()[-1])
    assert row["username"] == "lan"
    assert row["systems"] == ["portal"]
    assert row["state"] == "active"
    assert "mật khẩu" not in out
    assert "argon2" not in out
    assert run("users", "disable", "lan", "-c", config) == 0
    assert run("users", "disable", "lan", "-c", config) == 1


def test_soc_needs_systems_and_assessor_a_date(config: str, tmp_path: Path) -> None:
    from canhgac.errors import ConfigError

    with pytest.raises(ConfigError, match="contracted"):
        run("users", "add", "lan", "--role", "soc", "-c", config)
    with pytest.raises(ConfigError, match="time-boxed"):
        run("users", "add", "minh", "--role", "assessor", "-c", config)


def test_api_tokens_create_list_revoke(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("api-tokens", "create", "--role", "admin", "--ttl", "7d", "-c", config) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("cgk_")
    token_id = text.split("_")[1]
    assert run("api-tokens", "list", "--json", "-c", config) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["id"] == token_id
    assert text.split("_", 2)[2] not in out
    assert run("api-tokens", "revoke", token_id, "-c", config) == 0
    assert run("api-tokens", "revoke", token_id, "-c", config) == 1
