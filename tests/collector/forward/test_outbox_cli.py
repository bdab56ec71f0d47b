"""`canhgac-collector forward status | list | retry` on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main
from collector.storage.sqlite import SqliteStore
from tests.collector.forward.test_outbox import T0


def write_cfg(tmp_path: Path) -> Path:
    """A configuration with one national destination and a store holding two items."""
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"""state_dir: {tmp_path / "state"}
forward:
  destinations:
    - name: national
      kind: national_json
      url: https://centre.example/reports
      ca_file: /nonexistent/ca.pem
      client_cert_file: /nonexistent/c.pem
      client_key_file: /nonexistent/c.key
"""
    )
    (tmp_path / "state").mkdir()
    store = SqliteStore(tmp_path / "state" / "collector.db")
    store.migrate()
    store.enqueue(["national"], "alert", ["a1", "a2"], at_ns=T0)
    store.mark_failed(
        "national",
        "alert",
        ["a1"],
        error="http_4xx: HTTP 422",
        next_attempt_ns=T0,
        max_attempts=20,
        permanent=True,
    )
    store.close()
    return path


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_cfg(tmp_path)


def test_status_shows_backlog_quarantine_and_the_last_error(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forward", "status", "--json", "--config", str(cfg)]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["destination"], row["backlog"], row["quarantined"]) == ("national", 1, 1)
    assert row["last_error"] == "http_4xx: HTTP 422"
    assert row["last_success"] == ""
    assert row["oldest_pending_s"] > 0


def test_list_filters_by_state(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forward", "list", "--state", "quarantined", "--json", "--config", str(cfg)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["state"], r["attempts"]) for r in rows] == [("a1", "quarantined", 1)]


def test_retry_requeues_and_is_audited(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forward", "retry", "national", "alert", "a1", "--config", str(cfg)]) == 0
    assert "queued again" in capsys.readouterr().out
    store = SqliteStore(tmp_path / "state" / "collector.db")
    try:
        assert {i.item_id: i.state for i in store.outbox_items()} == {
            "a1": "pending",
            "a2": "pending",
        }
        (record,) = store.audit_records(action_prefix="forward.")
        assert (record.action, record.target) == ("forward.retry", "national/alert/a1")
        assert record.actor.startswith("cli:")
    finally:
        store.close()
    # Not quarantined any more: a second retry is refused with the reason.
    assert main(["forward", "retry", "national", "alert", "a1", "--config", str(cfg)]) == 2
    assert "no quarantined item" in capsys.readouterr().err
