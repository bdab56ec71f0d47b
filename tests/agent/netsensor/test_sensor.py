"""Sensor end to end: health counters, event headers, replay determinism, shipped rules."""

from __future__ import annotations

from pathlib import Path

from agent.netsensor.packet import ACK, FIN, PSH, RST, SYN, URG, Frame
from agent.netsensor.sensor import Sensor
from canhgac.v1 import events_pb2
from collector.detection.engine import DetectionEngine
from tests.agent.netsensor.corepackets import (
    SERVER,
    T0,
    S,
    config,
    context,
    dns_answer,
    dns_query,
    eth,
    fast_tcp,
    frame,
    handshake,
)

ROOT = Path(__file__).resolve().parents[3]
PORT_SCAN = "TCP SYN port scan from one address"
FLOOD = "SYN flood with spoofed sources against one target"
STEALTH = "TCP FIN, NULL or XMAS stealth port scan"
ACK_SCAN = "TCP ACK scan (firewall mapping)"
SCANNER = "203.0.113.90"


def run(frames: list[Frame]) -> tuple[Sensor, list[events_pb2.Event]]:
    s = Sensor(config(), context(), interface="eth0", host_addresses=frozenset({SERVER}))
    events: list[events_pb2.Event] = []
    for i, f in enumerate(frames):
        s.feed(f)
        if i % 50 == 0:
            events += s.poll(f.time_ns)
    events += s.flush(frames[-1].time_ns)
    return s, events


def scan(flags: int, ports: int, t0: int = T0) -> list[Frame]:
    frames = []
    for port in range(1, ports + 1):
        t = t0 + port * 1_000_000
        frames.append(fast_tcp(flags, SCANNER, SERVER, 61000, port, t))
        frames.append(fast_tcp(RST | ACK, SERVER, SCANNER, port, 61000, t + 1000))
    return frames


def test_health_counts_everything() -> None:
    frames = [
        *handshake(),
        dns_query(),
        dns_answer(),
        Frame(b"\x00" * 5, T0),
        Frame(b"\x45", T0, 999),
        frame(eth(type=0x0806) / (b"\x00" * 28)),
    ]
    s, events = run(frames)
    h = s.health
    assert h.packets == 8
    assert h.bytes == sum(len(f.data) for f in frames)
    assert h.decode_failures == {"truncated_ethernet": 1, "unsupported_linktype": 1, "not_ip": 1}
    assert h.events == {"dns_query": 1, "dns_answer": 1, "flow": 2}
    assert h.flows_active == 0
    for e in events:
        assert (e.source, e.category, e.agent_id, e.host) == (
            "netsensor",
            "network",
            "agent-1",
            "web1",
        )


def test_non_first_fragments_are_counted_apart() -> None:
    from scapy.layers.inet import IP

    s, _ = run([frame(eth() / IP(frag=100, proto=17) / (b"x" * 20))])
    assert s.health.non_first_fragments == 1
    assert s.health.decode_failures == {}


def test_replay_gives_the_same_events() -> None:
    frames = scan(SYN, 40) + handshake(t=T0 + S) + [dns_query(t=T0 + 2 * S)]

    def shape(events: list[events_pb2.Event]) -> list[bytes]:
        out = []
        for e in events:
            e.ClearField("id")
            e.ClearField("created_ns")
            out.append(e.SerializeToString(deterministic=True))
        return sorted(out)

    assert shape(run(frames)[1]) == shape(run(frames)[1])


def alerts(events: list[events_pb2.Event]) -> dict[str, int]:
    engine, result = DetectionEngine.from_paths([ROOT / "rules" / "network"], clock_ns=lambda: T0)
    assert result.errors == []
    counts: dict[str, int] = {}
    for alert in engine.process(events):
        counts[alert.rule_title] = counts.get(alert.rule_title, 0) + 1
    return counts


def test_syn_scan_through_the_sensor_raises_the_port_scan_rule() -> None:
    _, events = run(scan(SYN, 100))
    fired = alerts(events)
    assert fired.get(PORT_SCAN) == 1
    assert FLOOD not in fired


def test_stealth_and_ack_scans_raise_their_rules() -> None:
    frames = scan(FIN | PSH | URG, 30) + scan(ACK, 30, T0 + 20 * S)
    fired = alerts(run(frames)[1])
    assert fired.get(STEALTH) == 1
    assert fired.get(ACK_SCAN) == 1


def test_spoofed_flood_raises_the_flood_rule() -> None:
    frames = [
        fast_tcp(SYN, f"198.18.{i // 250}.{i % 250 + 1}", SERVER, 1024 + i, 443, T0 + i * 10_000)
        for i in range(6000)
    ]
    fired = alerts(run(frames)[1])
    assert fired.get(FLOOD) == 1


def test_normal_traffic_raises_nothing() -> None:
    frames: list[Frame] = []
    for i in range(100):
        frames += handshake(f"198.51.100.{i + 1}", SERVER, 30000 + i, 443, T0 + i * 1000)
        frames.append(fast_tcp(FIN | ACK, f"198.51.100.{i + 1}", SERVER, 30000 + i, 443, T0 + S))
        frames.append(
            fast_tcp(FIN | ACK, SERVER, f"198.51.100.{i + 1}", 443, 30000 + i, T0 + S + 1)
        )
        frames.append(fast_tcp(ACK, f"198.51.100.{i + 1}", SERVER, 30000 + i, 443, T0 + S + 2))
    _, events = run(frames)
    assert alerts(events) == {}
    flows = [e.flow for e in events if e.action == "flow"]
    assert len(flows) == 100
    assert {(f.end_reason, f.direction) for f in flows} == {("fin", "inbound")}
