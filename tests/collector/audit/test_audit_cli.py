"""`canhgac-collector audit ...`, and the audit records other CLI commands leave."""

from __future__ import annotations

import argparse
import getpass
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main

ACTOR = f"cli:{getpass.getuser()}"
PASSWORD = "mật khẩu đủ dài 123"


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "collector.yaml"
    (tmp_path / "state").mkdir()
    path.write_text(f"state_dir: {tmp_path / 'state'}\n")
    return str(path)


def database(config: str) -> Path:
    (db,) = (Path(config).parent / "state").glob("*.db")
    return db


def raw(config: str, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(database(config))) as conn:
        return conn.execute(query).fetchall()


def tamper(config: str, statement: str) -> None:
    with closing(sqlite3.connect(database(config))) as conn:
        conn.executescript(
            f"DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {statement}"
        )


def add_user(config: str, tmp_path: Path, name: str = "lan") -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    argv = ["users", "add", name, "--role", "operator", "--password-file", str(secret)]
    assert main([*argv, "-c", config]) == 0


def audit_json(
    config: str, capsys: pytest.CaptureFixture[str], *options: str
) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["audit", "list", "--json", *options, "-c", config]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_state_changing_commands_leave_records_without_secrets(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_user(config, tmp_path)
    capsys.readouterr()
    assert main(["api-tokens", "create", "--role", "soc", "--system", "portal", "-c", config]) == 0
    api_token = capsys.readouterr().out.strip()
    assert main(["tokens", "create", "--system", "portal", "-c", config]) == 0
    enroll_token = capsys.readouterr().out.strip()
    assert main(["users", "disable", "lan", "-c", config]) == 0
    ((token_id, secret_hash),) = raw(config, "SELECT token_id, secret_hash FROM api_tokens")
    assert main(["api-tokens", "revoke", str(token_id), "-c", config]) == 0

    records = audit_json(config, capsys)
    assert [(r["actor"], r["action"]) for r in records] == [
        (ACTOR, "user.add"),
        (ACTOR, "api_token.create"),
        (ACTOR, "enrollment_token.create"),
        (ACTOR, "user.disable"),
        (ACTOR, "api_token.revoke"),
    ]
    assert records[0]["target"] == "lan"
    assert records[0]["detail"] == {"role": "operator", "systems": [], "valid_until_ns": 0}
    assert records[1]["target"] == token_id
    assert records[1]["detail"]["systems"] == ["portal"]
    assert records[1]["detail"]["role"] == "soc"

    ((password_hash,),) = raw(config, "SELECT password_hash FROM users")
    ((enroll_hash,),) = raw(config, "SELECT secret_hash FROM enrollment_tokens")
    secrets = [PASSWORD, str(password_hash), api_token, str(secret_hash), enroll_token]
    secrets += [str(enroll_hash), api_token.split(".")[-1], enroll_token.split(".")[-1]]
    columns = raw(config, "SELECT actor, action, target, detail FROM audit_log")
    assert len(columns) == 5
    for row in columns:
        for value in row:
            for secret in secrets:
                assert secret not in str(value)


def test_verify_an_intact_log(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "-c", config]) == 0
    assert "audit log intact: 0 records" in capsys.readouterr().out
    add_user(config, tmp_path, "lan")
    add_user(config, tmp_path, "minh")
    ((last_hash,),) = raw(config, "SELECT hash FROM audit_log WHERE seq = 2")
    capsys.readouterr()
    assert main(["audit", "verify", "-c", config]) == 0
    assert capsys.readouterr().out.strip() == f"audit log intact: 2 records, last hash {last_hash}"
    assert main(["audit", "verify", "--json", "-c", config]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["records"], result["last_hash"]) == (True, 2, last_hash)


@pytest.mark.parametrize(
    ("statement", "broken"),
    [
        ("UPDATE audit_log SET detail = '{}' WHERE seq = 2", 2),
        ("UPDATE audit_log SET hash = 'x' WHERE seq = 3", 3),
        ("DELETE FROM audit_log WHERE seq = 2", 3),
    ],
)
def test_verify_names_the_first_broken_record(
    config: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    statement: str,
    broken: int,
) -> None:
    for name in ("lan", "minh", "hoa", "tuan"):
        add_user(config, tmp_path, name)
    tamper(config, statement)
    capsys.readouterr()
    assert main(["audit", "verify", "-c", config]) == 1
    assert f"audit log BROKEN at record {broken}:" in capsys.readouterr().err
    assert main(["audit", "verify", "--json", "-c", config]) == 1
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["broken_seq"]) == (False, broken)


def test_verify_streams_past_one_page(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.audit.cli import PAGE
    from collector.audit.model import AuditEntry
    from collector.enroll.cli import open_store

    store = open_store(argparse.Namespace(config=Path(config)))
    for n in range(PAGE + 5):
        store.append_audit(AuditEntry("x", "test.append", str(n)), at_ns=n)
    store.close()
    assert main(["audit", "verify", "-c", config]) == 0
    assert f"intact: {PAGE + 5} records" in capsys.readouterr().out
    assert len(audit_json(config, capsys, "--limit", "3")) == 3
    assert [r["target"] for r in audit_json(config, capsys, "--limit", "2")] == [
        str(PAGE + 3),
        str(PAGE + 4),
    ]


def test_list_filters(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_user(config, tmp_path, "lan")
    assert main(["api-tokens", "create", "--role", "admin", "-c", config]) == 0
    assert [r["action"] for r in audit_json(config, capsys, "--action", "user.")] == ["user.add"]
    assert len(audit_json(config, capsys, "--actor", ACTOR)) == 2
    assert audit_json(config, capsys, "--actor", "someone") == []
    assert len(audit_json(config, capsys, "--since", "2000-01-01")) == 2
    assert audit_json(config, capsys, "--since", "2999-01-01T00:00") == []
    assert main(["audit", "list", "--since", "yesterday", "-c", config]) == 2
    assert "--since" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["audit", "list", "-c", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1  ")
    assert f"{ACTOR}  user.add  lan" in lines[0]
