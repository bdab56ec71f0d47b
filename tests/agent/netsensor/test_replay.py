"""Replay of pcap / pcapng files: frames, timestamps, events, the CLI command."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest
from scapy.layers.l2 import Ether
from scapy.utils import EDecimal, PcapNgWriter, PcapWriter

from agent.netsensor.config import NetSensorConfig
from agent.netsensor.packet import Frame
from agent.netsensor.replay import add_replay_command, read_frames, replay_file
from agent.sources.base import SourceContext
from canhgac.errors import ConfigError

from .frames import CLIENT, SERVER, T0, dns_exchange, tcp_session


def write(path: Path, frames: list[Frame], *, ng: bool = False, nano: bool = False) -> Path:
    writer = PcapNgWriter(str(path)) if ng else PcapWriter(str(path), nano=nano, linktype=1)
    for f in frames:
        pkt = Ether(f.data)
        pkt.time = EDecimal(f.time_ns) / EDecimal(10**9)
        writer.write(pkt)
    writer.close()
    return path


def ctx() -> SourceContext:
    return SourceContext(agent_id="a1", host="h1", clock_ns=time.time_ns)


@pytest.mark.parametrize(
    ("ng", "nano", "precision"), [(False, False, 1000), (False, True, 1), (True, False, 1000)]
)
def test_frames_keep_bytes_timestamps_and_link_type(
    tmp_path: Path, ng: bool, nano: bool, precision: int
) -> None:
    frames = [Frame(f.data, f.time_ns + 123, f.linktype, f.wire_length) for f in tcp_session()]
    got = list(read_frames(write(tmp_path / "c.pcap", frames, ng=ng, nano=nano)))
    assert [f.data for f in got] == [f.data for f in frames]
    assert [f.linktype for f in got] == [1] * len(frames)
    assert [f.wire_length for f in got] == [len(f.data) for f in frames]
    for g, f in zip(got, frames, strict=True):
        assert abs(g.time_ns - f.time_ns) < precision


def test_replay_gives_the_flow_and_dns_events(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", tcp_session() + dns_exchange(T0 + 10**9), nano=True)
    events = replay_file(
        path, NetSensorConfig(), ctx(), interface="eth0", host_addresses=frozenset({SERVER})
    )
    flows = [e.flow for e in events if e.action == "flow" and e.flow.transport == "tcp"]
    assert len(flows) == 1
    assert (flows[0].src_ip, flows[0].dst_ip, flows[0].direction) == (CLIENT, SERVER, "inbound")
    assert flows[0].first_seen_ns == T0
    assert flows[0].interface == "eth0"
    dns = [e.dns for e in events if e.action in ("dns_query", "dns_answer")]
    assert [(d.query_name, d.is_response) for d in dns] == [
        ("example.test", False),
        ("example.test", True),
    ]


def test_snaplen_applies_to_replayed_frames(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", tcp_session())
    got = list(read_frames(path, snaplen=60))
    assert max(len(f.data) for f in got) == 60
    assert max(f.wire_length for f in got) > 60


def test_a_file_that_is_not_a_capture_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_text("hello, not a pcap file at all")
    with pytest.raises(ConfigError, match="cannot read the capture") as info:
        list(read_frames(bad))
    assert info.value.location == str(bad)
    with pytest.raises(ConfigError):
        list(read_frames(tmp_path / "missing.pcap"))


def test_the_replay_command_prints_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.pcapng", dns_exchange(), ng=True)
    parser = argparse.ArgumentParser()
    add_replay_command(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["replay", str(path), "--host-address", SERVER, "--interface", "e0"])
    assert ns.fn(ns) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    actions = [d["action"] for d in lines]
    assert actions.count("dns_query") == 1
    assert actions.count("dns_answer") == 1
    answer = next(d for d in lines if d["action"] == "dns_answer")
    assert answer["dns"]["answers"][0]["data"] == "10.213.7.99"
    assert f"{len(lines)} events" in err
