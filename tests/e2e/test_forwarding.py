"""Layer 4 end to end with real processes: a provincial collector forwards its alerts to the
receiver over mutual TLS; each arrives exactly once (after deduplication by id), through a
receiver outage of a minute and a kill -9 of the collector during it."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.forward.receiver.pki import ReceiverPki, make_receiver_pki

from .harness import BIN, System, free_port, port_open, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

OUTAGE_S = 60
RULE = """title: Forwarding test login
id: 0b7f3c1e-8d42-4f7a-a6c5-2e9d1f4b7a10
status: experimental
description: A successful login by one of the forwarding test's accounts.
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: success
    user.name|startswith: fwd
  condition: selection
level: high
"""


def login(user: str) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")
    return (
        f"{stamp} {socket.gethostname()} sshd[4242]: Accepted publickey for {user} "
        "from 14.160.1.7 port 52000 ssh2\n"
    )


class Receiver:
    """The `canhgac-collector receiver run` process, stopped and started on one port."""

    def __init__(self, root: Path, pki: ReceiverPki) -> None:
        self.root, self.pki, self.port = root, pki, free_port()
        self.url = f"https://127.0.0.1:{self.port}/national/v1/reports"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.root / "receiver.log", "ab")  # noqa: SIM115  # closed with the process
        self.proc = subprocess.Popen(
            [
                str(BIN / "canhgac-collector"),
                "receiver",
                "run",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--tls-cert",
                str(self.pki.server_cert),
                "--tls-key",
                str(self.pki.server_key),
                "--client-ca",
                str(self.pki.ca_file),
                "--data-dir",
                str(self.root / "received"),
            ],
            stdout=out,
            stderr=out,
        )
        wait_for(lambda: port_open("127.0.0.1", self.port), 30, "the receiver to listen")

    def args(self) -> list[str]:
        return [
            f"--listen=127.0.0.1:{self.port}",
            f"--tls-cert={self.pki.server_cert}",
            f"--tls-key={self.pki.server_key}",
            f"--client-ca={self.pki.ca_file}",
            f"--data-dir={self.root / 'received'}",
        ]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def listing(self) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=str(self.pki.ca_file))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        with httpx.Client(verify=context, timeout=10) as c:
            result: dict[str, Any] = c.get(self.url).json()
        return result

    def alert_ids(self) -> list[str]:
        return [r["id"] for r in self.listing()["reports"] if r["kind"] == "alert"]


def collector_alert_ids(cfg: Path) -> set[str]:
    out = subprocess.run(
        [BIN / "canhgac-collector", "alerts", "list", "--json", "--limit", "1000", "--config", cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return {json.loads(line)["id"] for line in out.stdout.decode().splitlines() if line.strip()}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[System, Receiver]]:
    pki = make_receiver_pki(tmp_path / "receiver-pki", ["127.0.0.1"], "e2e")
    receiver = Receiver(tmp_path, pki)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "forwarding_login.yml").write_text(RULE)
    forward = f"""forward:
  destinations:
    - name: national
      kind: national_json
      url: "{receiver.url}"
      ca_file: "{pki.ca_file}"
      client_cert_file: "{pki.client_cert}"
      client_key_file: "{pki.client_key}"
      timeout_s: 5
      # A short cap keeps the test short; as many attempts as a minute's outage needs.
      max_attempts: 1000
      backoff_base_s: 0.5
      backoff_cap_s: 2
      poll_interval_s: 1
"""
    system = System(
        tmp_path,
        rule_paths=[rules],
        detection_extra="suppress_window_s: 0",
        collector_extra=forward,
    )
    receiver.start()
    system.start_collector()
    system.start_agent()
    try:
        yield system, receiver
    finally:
        system.stop()
        receiver.stop()


def write(system: System, users: list[str]) -> None:
    with system.log.open("a") as fh:
        fh.writelines(login(u) for u in users)


def test_alerts_reach_the_receiver_once_through_an_outage_and_a_crash(
    setup: tuple[System, Receiver],
) -> None:
    system, receiver = setup
    write(system, ["fwd00"])
    wait_for(lambda: len(receiver.alert_ids()) == 1, 60, "the first alert at the receiver")
    assert receiver.alert_ids() == list(collector_alert_ids(system.collector_cfg))

    receiver.stop()
    outage_started = time.monotonic()
    write(system, ["fwd01", "fwd02", "fwd03"])
    wait_for(
        lambda: len(collector_alert_ids(system.collector_cfg)) == 4, 60, "alerts during the outage"
    )
    system.kill_collector()
    system.start_collector()
    write(system, ["fwd04", "fwd05"])
    wait_for(
        lambda: len(collector_alert_ids(system.collector_cfg)) == 6, 60, "alerts after the crash"
    )
    # The issue asks for a receiver outage of a minute: the outage itself is what is tested,
    # so this waits out the rest of it rather than for a condition.
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
    receiver.start()

    expected = collector_alert_ids(system.collector_cfg)
    wait_for(lambda: set(receiver.alert_ids()) == expected, 60, "every alert at the receiver")
    received = receiver.alert_ids()
    assert sorted(received) == sorted(expected)  # each exactly once after deduplication
    lines = (system.root / "received" / "national.jsonl").read_text().splitlines()
    kept = [json.loads(line) for line in lines]
    assert len(kept) == len({(r["kind"], r["id"]) for r in kept})
    assert all("10." not in r["source"]["collector"] for r in kept)
    status = subprocess.run(
        [
            BIN / "canhgac-collector",
            "forward",
            "status",
            "--json",
            "--config",
            system.collector_cfg,
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    (row,) = [json.loads(line) for line in status.stdout.decode().splitlines()]
    assert row["destination"] == "national"
    assert row["quarantined"] == 0
