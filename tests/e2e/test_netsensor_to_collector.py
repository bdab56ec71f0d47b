"""The whole path for the network sensor: a real nmap SYN scan between two network namespaces
the test makes, seen by the real agent program's sensor in the target namespace, shipped over
mutual TLS to the real collector, which raises the port-scan alert."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.netsensor.netns import NetnsPair, netns_pair
from tests.requirements import require

from .harness import BIN, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    require(shutil.which("nmap") is not None, "nmap")
    with netns_pair("cge") as p:
        yield p


def alerts(cfg: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [BIN / "canhgac-collector", "alerts", "list", "--json", "--config", cfg],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def test_an_nmap_syn_scan_becomes_a_port_scan_alert(tmp_path: Path, pair: NetnsPair) -> None:
    # The collector runs in the scanner's namespace (a), the agent in the target's (b): the
    # agent's own stream to the collector is left out of the capture by the kernel filter.
    system = System(
        tmp_path,
        listen_host=pair.a_ip,
        connect_host=pair.a_ip,
        collector_netns=pair.a,
        agent_netns=pair.b,
    )
    ports = f"not port {system.grpc_port} and not port {system.enroll_port}"
    system.extra_sources["netsensor"] = (
        f'{{interface: {pair.b_if}, bpf_filter: "{ports}", attempts_window_s: 2}}'
    )
    system.__post_init__()  # rewrite the configuration with the sensor in it
    system.start_collector()
    system.start_agent()
    try:
        log = tmp_path / "agent.log"
        wait_for(lambda: "source netsensor: running" in log.read_text(), 30, "the sensor to start")
        scan = pair.exec(
            pair.a, "nmap", "-n", "-Pn", "-sS", "-p", "1-300", "--max-rate", "3000", pair.b_ip
        )
        assert scan.returncode == 0, scan.stderr
        wait_for(
            lambda: any(
                a["rule_title"] == "TCP SYN port scan from one address"
                for a in alerts(system.collector_cfg)
            ),
            60,
            "the port-scan alert at the collector",
        )
        (alert,) = [
            a
            for a in alerts(system.collector_cfg)
            if a["rule_title"] == "TCP SYN port scan from one address"
        ]
        assert alert["agent_id"] == "e2e-agent"
        assert pair.a_ip in str(alert["summary"])
    finally:
        codes = system.stop()
        assert codes == (0, 0), (tmp_path / "agent.log").read_text()[-3000:]
