"""The network sensor for real: nmap and dig across a veth pair, rules, and pcap replay.

Two namespaces made here (10.213.x.1 scans, 10.213.x.2 is the monitored host); nothing is
sent anywhere else. In the monitored namespace: the sensor (an AF_PACKET socket made there),
a tiny DNS responder and tcpdump writing the same traffic to a pcap. Then: the scan shows as
connection attempts and the port-scan rule alerts, dig's query and answer come out as DNS
events, and replaying the pcap gives the same flows, DNS events and attempt counts.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agent.netsensor.config import NetSensorConfig
from agent.netsensor.replay import replay_file
from agent.netsensor.source import NetSensorSource
from agent.sources.base import Checkpoint, SourceContext
from canhgac.v1 import events_pb2
from collector.detection.engine import DetectionEngine
from tests.agent.netsensor.netns import NetnsPair, netns_capture, netns_pair
from tests.agent.sources.harness import wait_until
from tests.requirements import require

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "10.213.250.99"
# Answers one A query per datagram for any name with a fixed record; bounded by a timeout.
RESPONDER = f"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53)); s.settimeout(60)
print("up", flush=True)
while True:
    try:
        q, peer = s.recvfrom(512)
    except TimeoutError:
        break
    end = q.index(b"\\0", 12) + 5
    answer = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + socket.inet_aton({ANSWER!r})
    head = q[:2] + b"\\x85\\x80" + q[4:6] + b"\\x00\\x01\\x00\\x00\\x00\\x00"
    s.sendto(head + q[12:end] + answer, peer)
"""


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    for tool in ("nmap", "dig", "tcpdump"):
        require(shutil.which(tool) is not None, tool)
    with netns_pair("cge") as p:
        yield p


class ListSink:
    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        self.events.extend(events)


def started(proc: subprocess.Popen[str], marker: str, stream: str = "stdout") -> None:
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    line = pipe.readline()
    assert marker in line, f"{proc.args!r}: {line!r}"


def normalised(events: list[events_pb2.Event], action: str) -> list[str]:
    out = []
    for e in events:
        if e.action.startswith(action):
            e = events_pb2.Event.FromString(e.SerializeToString())
            e.ClearField("id")
            e.ClearField("created_ns")
            out.append(str(e))
    return sorted(out)


def attempt_counts(events: list[events_pb2.Event]) -> list[tuple[object, ...]]:
    rows = []
    for e in events:
        if e.action == "connection_attempts":
            a = e.connection_attempts
            rows.append(
                (
                    a.scope,
                    a.ip,
                    a.window_start_ns,
                    a.syn_without_handshake,
                    a.distinct_dst_ports,
                    a.rst_replies,
                    dict(a.probes_by_flags),
                )
            )
    return sorted(rows, key=repr)


def test_scan_and_dns_are_seen_alerted_and_replayed(pair: NetnsPair, tmp_path: Path) -> None:
    config = NetSensorConfig(interface=pair.b_if, bpf_filter="ip")
    hosts = frozenset({pair.b_ip})
    pcap = tmp_path / "traffic.pcap"
    responder = pair.popen(pair.b, sys.executable, "-c", RESPONDER, pair.b_ip)
    tcpdump = pair.popen(
        # --immediate-mode: otherwise packets wait in the ring for a block timeout and those
        # still waiting at SIGINT never reach the file.
        pair.b,
        "tcpdump",
        "-i",
        pair.b_if,
        "-n",
        "-U",
        "--immediate-mode",
        "-s",
        "1600",
        "--time-stamp-precision",
        "nano",
        "-w",
        str(pcap),
        "ip",
    )
    try:
        started(responder, "up")
        started(tcpdump, "listening on", "stderr")
        live = asyncio.run(capture_while(pair, config, hosts))
    finally:
        for proc in (tcpdump, responder):
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # The scan, as the sensor summarises it, and the rule that catches it.
    scans = [
        e.connection_attempts
        for e in live
        if e.action == "connection_attempts" and e.connection_attempts.scope == "source"
    ]
    assert scans, [e.action for e in live]
    assert {a.ip for a in scans} == {pair.a_ip}
    assert sum(a.distinct_dst_ports for a in scans) >= 200
    assert sum(a.probes_by_flags["syn"] for a in scans) >= 200
    assert sum(a.rst_replies for a in scans) >= 200
    engine, loaded = DetectionEngine.from_paths([ROOT / "rules" / "network"])
    assert not loaded.errors
    alerts = engine.process(live)
    assert "TCP SYN port scan from one address" in {a.rule_title for a in alerts}

    # dig's query and the responder's answer.
    dns = [e.dns for e in live if e.action in ("dns_query", "dns_answer")]
    assert [(d.query_name, d.query_type, d.is_response) for d in dns] == [
        ("example.test", "A", False),
        ("example.test", "A", True),
    ]
    assert dns[1].rcode == "NOERROR"
    assert [(a.name, a.type, a.data) for a in dns[1].answers] == [("example.test", "A", ANSWER)]
    assert (dns[0].client_ip, dns[0].server_ip, dns[0].server_port) == (pair.a_ip, pair.b_ip, 53)

    # The same traffic, written by tcpdump and replayed, gives the same events.
    ctx = SourceContext(agent_id="e2e", host="h", clock_ns=time.time_ns)
    replayed = replay_file(pcap, config, ctx, interface=pair.b_if, host_addresses=hosts)
    assert len(normalised(live, "flow")) >= 200  # nmap's probes, each its own (reset) flow
    for action in ("flow", "dns_"):
        assert normalised(replayed, action) == normalised(live, action), action
    assert attempt_counts(replayed) == attempt_counts(live)


async def capture_while(
    pair: NetnsPair, config: NetSensorConfig, hosts: frozenset[str]
) -> list[events_pb2.Event]:
    """Run the source in b while nmap and dig run from a; its events once stopped."""

    source = NetSensorSource(config, capture_factory=netns_capture(pair.b), host_addresses=hosts)
    sink = ListSink()
    stop = asyncio.Event()
    ctx = SourceContext(agent_id="e2e", host="h", clock_ns=time.time_ns)
    task = asyncio.create_task(source.run(ctx, sink, stop))
    try:
        await wait_until(lambda: source.health.state == "running" or task.done())
        assert source.health.state == "running", source.health
        nmap = await asyncio.to_thread(
            pair.exec,
            pair.a,
            "nmap",
            "-sS",
            "-p",
            "1-200",
            "--max-rate",
            "2000",
            "-n",
            "-Pn",
            "--max-retries",
            "1",
            pair.b_ip,
            timeout=60,
        )
        assert "200 closed" in nmap.stdout or "Not shown: 200" in nmap.stdout, nmap.stdout
        dig = await asyncio.to_thread(
            pair.exec,
            pair.a,
            "dig",
            f"@{pair.b_ip}",
            "example.test",
            "A",
            "+time=2",
            "+tries=1",
            timeout=30,
        )
        assert ANSWER in dig.stdout, dig.stdout + dig.stderr
        # The answer is the last packet sent: once the sensor has reported it, it has read all.
        await wait_until(lambda: any(e.action == "dns_answer" for e in sink.events))
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert source.health.unparsed.get("kernel_drop", 0) == 0
    return sink.events
