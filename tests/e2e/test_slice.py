"""The whole path with the real programs: agent tails a log, collector stores and alerts.

Starts `canhgac-collector run`, enrolls the agent with a token from `canhgac-collector tokens
create`, starts `canhgac-agent run` (gRPC over mutual TLS on loopback, SQLite file), writes five
sshd failures into the watched log, and waits for the alert to show in
`canhgac-collector alerts list`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import BIN, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    s = System(tmp_path)
    s.start_collector()  # also enrolls the agent with a token from `tokens create`
    s.start_agent()
    try:
        yield s
    finally:
        codes = s.stop()
        # Both programs shut down cleanly on SIGTERM.
        assert codes == (0, 0), (tmp_path / "collector.log").read_text()[-3000:]


def alerts(cfg: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [BIN / "canhgac-collector", "alerts", "list", "--json", "--config", cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def test_five_failed_logins_raise_one_alert(system: System) -> None:
    stamp = time.strftime("%b %e %H:%M:%S")
    host = socket.gethostname()
    with system.log.open("a") as fh:
        for i in range(5):
            fh.write(
                f"{stamp} {host} sshd[4242]: Failed password for invalid user admin "
                f"from 203.0.113.7 port {51230 + i} ssh2\n"
            )
    started = time.monotonic()
    wait_for(lambda: bool(alerts(system.collector_cfg)), 30, "an alert in `alerts list`")
    print(f"alert visible {time.monotonic() - started:.2f} s after the lines were written")
    found = alerts(system.collector_cfg)
    assert len(found) == 1
    alert = found[0]
    assert alert["group"] == {"source.ip": "203.0.113.7"}
    assert alert["event_count"] == 5
    assert alert["agent_id"] == "e2e-agent"
    assert alert["status"] == "open"

    # The alert opened an incident record, with its legal clocks, and the compliance findings
    # run against the legal regime's data.
    listing = subprocess.run(
        [
            BIN / "canhgac-collector",
            "incidents",
            "list",
            "--json",
            "--config",
            system.collector_cfg,
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    (incident,) = [json.loads(line) for line in listing.stdout.decode().splitlines()]
    assert incident["alerts"] == 1
    assert incident["category"] == "unauthorized_access"
    findings = subprocess.run(
        [BIN / "canhgac-collector", "findings", "--json", "--config", system.collector_cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    codes = {json.loads(line)["code"] for line in findings.stdout.decode().splitlines()}
    assert "agent_without_system" in codes  # the test's agent belongs to no system

    # `alerts tail` shows it too, and stops by itself with --timeout.
    tail = subprocess.run(
        [
            BIN / "canhgac-collector",
            "alerts",
            "tail",
            "--timeout",
            "1",
            "--config",
            system.collector_cfg,
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert b"5 failed SSH logins from 203.0.113.7 within 60 s" in tail.stdout


def test_alert_needs_five_failures_from_the_same_address(system: System) -> None:
    stamp = time.strftime("%b %e %H:%M:%S")
    line = "{} h sshd[1]: Failed password for root from {} port {} ssh2\n"
    with system.log.open("a") as fh:
        for i in range(4):
            fh.write(line.format(stamp, "198.51.100.9", 4000 + i))
        # A fifth failure from another address must not complete the group.
        fh.write(line.format(stamp, "198.51.100.10", 4100))
    wait_for(lambda: system.stored_count() >= 5, 30, "five events stored")
    with system.log.open("a") as fh:
        fh.write(line.format(stamp, "198.51.100.9", 4200))
    wait_for(lambda: bool(alerts(system.collector_cfg)), 30, "the alert for the fifth failure")
    found = alerts(system.collector_cfg)
    # Detection runs batches in order, so had the first five raised anything it would be here.
    assert [a["group"] for a in found] == [{"source.ip": "198.51.100.9"}]
