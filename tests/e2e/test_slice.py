"""The whole path with the real programs: agent tails a log, collector stores and alerts.

Starts `canhgac-collector run`, enrolls the agent with a token from `canhgac-collector tokens
create`, starts `canhgac-agent run` (gRPC over mutual TLS on loopback, SQLite file), writes five
sshd failures into the watched log, and waits for the alert to show in
`canhgac-collector alerts list`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.enrollment import enroll_agent

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def system(tmp_path: Path) -> Iterator[dict[str, Path]]:
    grpc_port, http_port, enroll_port = free_port(), free_port(), free_port()
    log = tmp_path / "auth.log"
    log.touch()
    coll_cfg, agent_cfg = tmp_path / "collector.yaml", tmp_path / "agent.yaml"
    coll_cfg.write_text(
        f"""name: e2e
state_dir: {tmp_path / "collector"}
ingest: {{listen: "127.0.0.1:{grpc_port}", enroll_listen: "127.0.0.1:{enroll_port}"}}
tls: {{mode: auto, server_names: [localhost]}}
detection: {{rule_paths: ["{ROOT / "rules"}"]}}
http: {{listen: "127.0.0.1:{http_port}"}}
logging: {{format: json}}
"""
    )
    agent_cfg.write_text(
        f"""agent_id: e2e-agent
state_dir: {tmp_path / "agent"}
collector:
  address: localhost:{grpc_port}
  enroll_address: localhost:{enroll_port}
  ca_file: {tmp_path / "collector" / "pki" / "ca.crt"}
sources:
  authlog: {{paths: ["{log}"], poll_interval_ms: 100}}
logging: {{format: json}}
"""
    )
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    coll_log = open(tmp_path / "collector.log", "wb")  # noqa: SIM115
    agent_log = open(tmp_path / "agent.log", "wb")  # noqa: SIM115
    procs.append(
        subprocess.Popen(
            [BIN / "canhgac-collector", "run", "--config", coll_cfg], stderr=coll_log, env=env
        )
    )
    try:
        wait_for(
            lambda: (
                (tmp_path / "collector" / "pki" / "ca.crt").exists()
                and _port_open(grpc_port)
                and _port_open(enroll_port)
            ),
            30,
            "the collector to listen",
        )
        enroll_agent(coll_cfg, agent_cfg, "e2e-agent")
        procs.append(
            subprocess.Popen(
                [BIN / "canhgac-agent", "run", "--config", agent_cfg], stderr=agent_log, env=env
            )
        )
        yield {"log": log, "collector_cfg": coll_cfg, "dir": tmp_path}
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        coll_log.close()
        agent_log.close()
        for p in procs:
            assert p.returncode == 0, (tmp_path / "collector.log").read_text()[-3000:]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alerts(cfg: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [BIN / "canhgac-collector", "alerts", "list", "--json", "--config", cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def test_five_failed_logins_raise_one_alert(system: dict[str, Path]) -> None:
    stamp = time.strftime("%b %e %H:%M:%S")
    host = socket.gethostname()
    with system["log"].open("a") as fh:
        for i in range(5):
            fh.write(
                f"{stamp} {host} sshd[4242]: Failed password for invalid user admin "
                f"from 203.0.113.7 port {51230 + i} ssh2\n"
            )
    started = time.monotonic()
    wait_for(lambda: alerts(system["collector_cfg"]), 30, "an alert in `alerts list`")
    print(f"alert visible {time.monotonic() - started:.2f} s after the lines were written")
    found = alerts(system["collector_cfg"])
    assert len(found) == 1
    alert = found[0]
    assert alert["group"] == {"source.ip": "203.0.113.7"}
    assert alert["event_count"] == 5
    assert alert["agent_id"] == "e2e-agent"
    assert alert["status"] == "open"

    # `alerts tail` shows it too, and stops by itself with --timeout.
    tail = subprocess.run(
        [
            BIN / "canhgac-collector",
            "alerts",
            "tail",
            "--timeout",
            "1",
            "--config",
            system["collector_cfg"],
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert b"203.0.113.7" in tail.stdout or b"SSH" in tail.stdout


def test_alert_needs_five_failures_from_the_same_address(system: dict[str, Path]) -> None:
    stamp = time.strftime("%b %e %H:%M:%S")
    line = "{} h sshd[1]: Failed password for root from {} port {} ssh2\n"
    with system["log"].open("a") as fh:
        for i in range(4):
            fh.write(line.format(stamp, "198.51.100.9", 4000 + i))
        # A fifth failure from another address must not complete the group.
        fh.write(line.format(stamp, "198.51.100.10", 4100))
    import sqlite3

    db = system["dir"] / "collector" / "collector.db"

    def stored() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            try:
                return int(con.execute("select count(*) from events").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    wait_for(lambda: stored() >= 5, 30, "five events stored")
    with system["log"].open("a") as fh:
        fh.write(line.format(stamp, "198.51.100.9", 4200))
    wait_for(lambda: alerts(system["collector_cfg"]), 30, "the alert for the fifth failure")
    found = alerts(system["collector_cfg"])
    # Detection runs batches in order, so had the first five raised anything it would be here.
    assert [a["group"] for a in found] == [{"source.ip": "198.51.100.9"}]
