"""Review finding: items of a destination removed from the configuration stay visible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main
from collector.storage.sqlite import SqliteStore
from tests.collector.forward.test_outbox import T0
from tests.collector.forward.test_outbox_cli import write_cfg


def test_status_shows_a_removed_destination_that_still_has_items(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_cfg(tmp_path)
    store = SqliteStore(tmp_path / "state" / "collector.db")
    try:
        store.enqueue(["old-soc"], "alert", ["a1"], at_ns=T0)
        store.enqueue(["gone"], "alert", ["a9"], at_ns=T0)
        store.mark_delivered("gone", "alert", ["a9"], T0)
    finally:
        store.close()
    assert main(["forward", "status", "--json", "--config", str(cfg)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    seen = {r["destination"]: (r["configured"], r["backlog"]) for r in rows}
    # "gone" has delivered everything: nothing waits, nothing to show.
    assert seen == {"national": (True, 1), "old-soc": (False, 1)}
    assert main(["forward", "status", "--config", str(cfg)]) == 0
    assert "old-soc: backlog 1" in capsys.readouterr().out
