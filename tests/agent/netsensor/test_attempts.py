"""Connection-attempt windows: scans, stealth probes, floods, and quiet normal traffic."""

from __future__ import annotations

from agent.netsensor.attempts import AttemptTracker
from agent.netsensor.packet import ACK, FIN, PSH, RST, SYN, URG, Frame
from agent.netsensor.sensor import Sensor
from canhgac.v1 import events_pb2
from tests.agent.netsensor.corepackets import (
    SERVER,
    T0,
    S,
    config,
    context,
    fast_tcp,
    handshake,
    unreachable,
)

SCANNER = "203.0.113.90"


def attempts(frames: list[Frame], **overrides: int) -> list[events_pb2.ConnectionAttempts]:
    s = Sensor(config(**overrides), context(), interface="eth0")
    for f in frames:
        s.feed(f)
    events = s.flush(frames[-1].time_ns + 1)
    return [e.connection_attempts for e in events if e.action == "connection_attempts"]


def by_scope(
    events: list[events_pb2.ConnectionAttempts], scope: str
) -> list[events_pb2.ConnectionAttempts]:
    return [e for e in events if e.scope == scope]


def syn_scan(ports: range, *, open_ports: frozenset[int] = frozenset()) -> list[Frame]:
    frames = []
    for i, port in enumerate(ports):
        t = T0 + i * 1_000_000
        frames.append(fast_tcp(SYN, SCANNER, SERVER, 50000, port, t))
        if port in open_ports:
            frames.append(fast_tcp(SYN | ACK, SERVER, SCANNER, port, 50000, t + 1))
            frames.append(fast_tcp(RST, SCANNER, SERVER, 50000, port, t + 2))
        else:
            frames.append(fast_tcp(RST | ACK, SERVER, SCANNER, port, 50000, t + 1))
    return frames


def test_syn_scan_of_100_ports_gives_one_source_summary() -> None:
    events = attempts(syn_scan(range(1, 101), open_ports=frozenset({22, 80})))
    (src,) = by_scope(events, "source")
    assert src.ip == SCANNER
    assert src.syn_without_handshake == 100  # the scanner never completes: RST after SYN-ACK
    assert src.handshakes_completed == 0
    assert (src.distinct_dst_ports, src.distinct_dst_hosts) == (100, 1)
    assert src.rst_replies == 98
    assert dict(src.probes_by_flags) == {"syn": 100}
    assert list(src.sample_ports) == list(range(1, 21))
    assert src.window_start_ns == T0 - T0 % (10 * S)
    assert src.interface == "eth0"
    (dst,) = by_scope(events, "destination")
    assert (dst.ip, dst.distinct_src_hosts, dst.syn_without_handshake) == (SERVER, 1, 100)


def test_stealth_and_ack_probes_are_counted_by_pattern() -> None:
    frames = []
    for i, flags in enumerate([FIN, 0, FIN | PSH | URG, ACK]):
        for port in range(1, 31):
            frames.append(fast_tcp(flags, SCANNER, SERVER, 40000 + i, port, T0 + i * 100 + port))
    (src,) = by_scope(attempts(frames), "source")
    assert dict(src.probes_by_flags) == {"fin": 30, "null": 30, "xmas": 30, "ack": 30}
    assert src.distinct_dst_ports == 30
    assert src.syn_without_handshake == 0


def test_ack_inside_a_connection_is_not_a_probe() -> None:
    frames = handshake() + [
        fast_tcp(ACK, "10.20.1.45", SERVER, 40000, 443, T0 + i) for i in range(50)
    ]
    assert attempts(frames) == []


def test_normal_clients_make_no_summaries() -> None:
    frames = []
    for i in range(200):
        frames += handshake(
            f"198.51.100.{i % 250 + 1}", SERVER, 30000 + i, 443 if i % 2 else 80, T0 + i
        )
    # One lost SYN retransmitted twice to one port is not a scan either.
    frames += [fast_tcp(SYN, "198.51.100.251", SERVER, 41000, 8443, T0 + S * k) for k in range(3)]
    events = attempts(frames)
    assert by_scope(events, "source") == []
    # The server itself gets one summary for the window: a few unanswered among many clients.
    (dst,) = by_scope(events, "destination")
    assert (dst.syn_without_handshake, dst.handshakes_completed) == (3, 200)


def test_spoofed_flood_gives_a_destination_summary_with_bounded_memory() -> None:
    s = Sensor(config(max_flows=1000, max_attempt_keys=2000), context(), interface="eth0")
    peak_keys = 0
    for i in range(20_000):
        src = f"198.{18 + i // 60000}.{i // 250 % 240}.{i % 250 + 1}"
        s.feed(fast_tcp(SYN, src, SERVER, 1024 + i % 60000, 443, T0 + i * 100_000))
        assert s.health.flows_active <= 1000
        peak_keys = max(peak_keys, s.attempt_keys)
    events = s.flush(T0 + 2 * S)
    assert peak_keys <= 2 * 2000
    assert s.health.attempt_keys_dropped == 20_000 - 2000
    summaries = [e.connection_attempts for e in events if e.action == "connection_attempts"]
    (dst,) = by_scope(summaries, "destination")
    assert (dst.ip, dst.syn_without_handshake, dst.distinct_dst_ports) == (SERVER, 20_000, 1)
    assert dst.distinct_src_hosts == 20_000
    assert dict(dst.probes_by_flags) == {"syn": 20_000}
    assert by_scope(summaries, "source") == []  # one SYN per spoofed source: nothing to say
    assert len(events) < 1100  # not one event per packet


def test_icmp_unreachable_is_tied_to_the_prober() -> None:
    frames = [fast_tcp(SYN, SCANNER, SERVER, 50000, p, T0 + p) for p in range(1, 6)]
    frames += [
        unreachable(SCANNER, SERVER, 161, T0 + 100),
        unreachable(SCANNER, SERVER, 162, T0 + 101),
    ]
    events = attempts(frames)
    (src,) = by_scope(events, "source")
    (dst,) = by_scope(events, "destination")
    assert src.icmp_unreachable == 2
    assert dst.icmp_unreachable == 2


def test_windows_close_on_frame_time() -> None:
    tracker = AttemptTracker(window_ns=10 * S, max_keys=100)
    tracker.advance(T0)
    for port in range(30):
        tracker.probe("syn", SCANNER, SERVER, port)
    tracker.advance(T0 + 9 * S)
    assert tracker.drain() == []
    tracker.advance(T0 + 10 * S)
    closed = tracker.drain()
    assert {c.scope for c in closed} == {"source", "destination"}
    assert all(c.window_end_ns - c.window_start_ns == 10 * S for c in closed)
    assert len(tracker) == 0


def test_replies_do_not_create_keys() -> None:
    tracker = AttemptTracker(window_ns=10 * S, max_keys=100)
    tracker.advance(T0)
    for i in range(50):
        tracker.rst_reply(SERVER, f"192.0.2.{i}")
        tracker.unreachable(f"192.0.2.{i}", SERVER)
        tracker.handshake(f"192.0.2.{i}", SERVER)
    assert len(tracker) == 0
