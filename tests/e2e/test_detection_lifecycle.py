"""Detection across the collector program's life: a correlation window survives a restart, and
SIGHUP (or a changed rule file) loads new rules without a restart and without losing events."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import BIN, ROOT, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CANARY_RULE = """title: Canary account logged in
id: 6f1d2b0e-4a51-4c8e-9d35-7c1f0a9e2b44
status: experimental
description: A login by the test's canary account, a rule added while the collector runs.
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: success
    user.name: canary
  condition: selection
level: high
"""


def alerts(cfg: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [BIN / "canhgac-collector", "alerts", "list", "--json", "--config", cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def failed_login(i: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")
    return (
        f"{stamp} {socket.gethostname()} sshd[4242]: Failed password for root "
        f"from 203.0.113.9 port {52000 + i} ssh2\n"
    )


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "linux" / "auth" / "ssh_password_guessing.yml", rules)
    # File watching off: this test drives reloads with SIGHUP.
    s = System(tmp_path, rule_paths=[rules], detection_extra="reload_check_s: 0")
    s.start_collector()
    s.start_agent()
    try:
        yield s
    finally:
        s.stop()


def test_a_window_survives_a_collector_restart(system: System, tmp_path: Path) -> None:
    with system.log.open("a") as fh:
        fh.writelines(failed_login(i) for i in range(4))
    wait_for(lambda: system.stored_count() >= 4, 30, "four failures stored")
    # A clean stop: detection finishes the stored batches and saves its windows.
    assert system.collector is not None
    system.collector.send_signal(signal.SIGTERM)
    assert system.collector.wait(timeout=30) == 0
    state = tmp_path / "collector" / "detection-state.json"
    assert state.exists()
    assert alerts(system.collector_cfg) == []
    system.start_collector()
    with system.log.open("a") as fh:
        fh.write(failed_login(4))
    wait_for(lambda: bool(alerts(system.collector_cfg)), 30, "the alert after the restart")
    (alert,) = alerts(system.collector_cfg)
    assert alert["event_count"] == 5
    assert alert["group"] == {"source.ip": "203.0.113.9"}


def test_sighup_loads_a_new_rule_and_a_broken_file_disables_only_itself(
    system: System, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    (rules / "canary.yml").write_text(CANARY_RULE)
    (rules / "broken.yml").write_text("title: broken\ndetection: [not closed\n")
    assert system.collector is not None
    system.collector.send_signal(signal.SIGHUP)
    log = tmp_path / "collector.log"
    wait_for(lambda: "rules reloaded" in log.read_text(), 30, "the reload in the log")
    assert "broken.yml" in log.read_text()
    stamp = time.strftime("%b %e %H:%M:%S")
    with system.log.open("a") as fh:
        fh.write(
            f"{stamp} {socket.gethostname()} sshd[4243]: Accepted publickey for canary "
            "from 198.51.100.20 port 50000 ssh2\n"
        )
        fh.writelines(failed_login(i) for i in range(5))  # the old rules still run
    wait_for(lambda: len(alerts(system.collector_cfg)) >= 2, 30, "both alerts")
    titles = sorted(str(a["rule_title"]) for a in alerts(system.collector_cfg))
    assert titles == ["Canary account logged in", "SSH password guessing from one address"]
    assert system.collector.poll() is None  # still running
