"""`canhgac-collector rules test|lint|replay` on rule trees made by the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canhgac.v1 import events_pb2
from collector.cli import main
from collector.detection.goldens import check_library
from collector.storage.sqlite import SqliteStore

AUTH = Path(__file__).resolve().parents[3] / "rules" / "linux" / "auth"
RULE = """title: Login by the canary account
id: 0b0e4a3c-5d1e-4a8e-9f0a-1c2b3d4e5f60
name: canhgac_test_canary
status: test
description: A test rule.
logsource: {product: linux, service: sshd}
detection:
  selection: {event.action: ssh_login, user.name: canary}
  condition: selection
level: high
"""
GOLDEN = """cases:
  - name: the canary
    expect: {canhgac_test_canary: %d}
    events:
      - event: {category: authentication, action: ssh_login, auth: {user: canary}}
  - name: someone else
    expect: {canhgac_test_canary: 0}
    events:
      - event: {category: authentication, action: ssh_login, auth: {user: alice}}
"""


def tree(tmp_path: Path, positive: int = 1, golden: str | None = GOLDEN) -> Path:
    root = tmp_path / "rules"
    root.mkdir()
    (root / "canary.yml").write_text(RULE)
    if golden is not None:
        (root / "canary.golden.yml").write_text(golden % positive if "%d" in golden else golden)
    return root


def test_passing_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(tree(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 passed, 0 failed"


def test_a_wrong_count_fails_and_names_the_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "test", str(tree(tmp_path, positive=2))]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "[the canary] canhgac_test_canary: expected 2, got 1" in out
    # and only one positive case expecting 2 means no passing positive: still reported once
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_tested_rule_without_golden_events_fails(tmp_path: Path) -> None:
    report = check_library([tree(tmp_path, golden=None)])
    assert not report.ok
    assert "needs golden events in canary.golden.yml" in report.problems[0]


def test_a_golden_file_that_is_not_valid_is_reported(tmp_path: Path) -> None:
    report = check_library([tree(tmp_path, golden="cases: [{name: x, expect: {a: 1}}]\n")])
    assert not report.ok
    assert any("invalid golden file" in p and "events" in p for p in report.problems)


def test_lint_reports_a_broken_rule_and_missing_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree(tmp_path)
    (root / "broken.yml").write_text("title: x\ndetection: [\n")
    assert main(["rules", "lint", str(root)]) == 1
    out = capsys.readouterr().out
    assert "error: " in out
    assert "broken.yml" in out
    assert "attack_tags" in out  # the canary rule has no ATT&CK tag: a warning


def test_replay_runs_the_rules_over_stored_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(AUTH / "ssh_password_guessing.yml", rules)
    state = tmp_path / "state"
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(
        f"state_dir: {state}\ndetection: {{rule_paths: ['{rules}']}}\ntls: {{mode: insecure_dev}}\n"
    )
    state.mkdir()
    store = SqliteStore(state / "collector.db")
    store.migrate()
    t0 = 1_795_350_000_000_000_000  # 2026-11-22T12:20:00Z
    events = [
        events_pb2.Event(
            id=f"e{i}",
            time_ns=t0 + i * 1_000_000_000,
            agent_id="web-01",
            category="authentication",
            action="ssh_login",
            outcome=events_pb2.OUTCOME_FAILURE,
            auth=events_pb2.AuthEvent(user="root", source_ip="203.0.113.7", method="password"),
        )
        for i in range(6)
    ]
    store.store_batch("web-01", 1, events, t0)
    store.close()
    args = ["rules", "replay", "--config", str(cfg), "--from", "2026-11-22T12:20:00"]
    assert main([*args, "--to", "2026-11-22T12:21:00"]) == 0
    out = capsys.readouterr()
    assert "5 failed SSH logins from 203.0.113.7" in out.out
    assert "6 events replayed, 1 alerts" in out.err
    # Outside the range nothing is replayed.
    assert (
        main(
            ["rules", "replay", "--config", str(cfg), "--from", "2026-11-23", "--to", "2026-11-24"]
        )
        == 0
    )
    assert "0 events replayed, 0 alerts" in capsys.readouterr().err
