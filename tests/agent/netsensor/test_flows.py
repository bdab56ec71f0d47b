"""The flow table: sides, close on FIN/RST, timeouts, eviction, direction, flood policy."""

from __future__ import annotations

from agent.netsensor.decode import decode
from agent.netsensor.flows import FlowTable
from agent.netsensor.packet import ACK, FIN, PSH, SYN, Frame
from agent.netsensor.sensor import Sensor
from canhgac.v1 import events_pb2
from tests.agent.netsensor.corepackets import (
    CLIENT,
    SERVER,
    T0,
    S,
    config,
    context,
    fast_tcp,
    handshake,
    tcp,
    udp,
)


def sensor(host: frozenset[str] = frozenset({SERVER}), **overrides: int) -> Sensor:
    return Sensor(config(**overrides), context(), interface="eth0", host_addresses=host)


def run(s: Sensor, frames: list[Frame], poll_at: int | None = None) -> list[events_pb2.FlowEvent]:
    for f in frames:
        s.feed(f)
    events = s.poll(poll_at if poll_at is not None else frames[-1].time_ns)
    return [e.flow for e in events if e.WhichOneof("payload") == "flow"]


def closed_connection(t: int = T0, sport: int = 40000) -> list[Frame]:
    return [
        *handshake(sport=sport, t=t),
        tcp("PA", sport=sport, t=t + 3000, payload=b"GET / HTTP/1.1\r\n\r\n"),
        tcp("PA", SERVER, CLIENT, 443, sport, t + 4000, payload=b"HTTP/1.1 200 OK\r\n\r\n"),
        tcp("FA", sport=sport, t=t + 5000),
        tcp("FA", SERVER, CLIENT, 443, sport, t + 6000),
        tcp("A", sport=sport, t=t + 7000),
    ]


def test_handshake_and_fin_close_give_one_flow() -> None:
    s = sensor()
    (flow,) = run(s, closed_connection())
    assert (flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port) == (CLIENT, 40000, SERVER, 443)
    assert (flow.packets_to_server, flow.packets_to_client) == (5, 3)
    assert flow.bytes_to_server == 3 * 40 + 58 + 40
    assert flow.bytes_to_client == 40 + 59 + 40
    assert flow.tcp_flags == SYN | ACK | PSH | FIN
    assert (flow.first_seen_ns, flow.last_seen_ns) == (T0, T0 + 7000)
    assert (flow.end_reason, flow.direction, flow.transport) == ("fin", "inbound", "tcp")
    assert (flow.interface, flow.ip_protocol) == ("eth0", 6)
    assert s.health.flows_active == 0


def test_late_packets_after_close_do_not_open_a_flow() -> None:
    s = sensor()
    run(s, closed_connection())
    assert run(s, [tcp("A", sport=40000, t=T0 + S)], poll_at=T0 + 100 * S) == []
    assert s.health.late_packets == 1


def test_both_fins_without_final_ack_end_after_linger() -> None:
    s = sensor()
    assert run(s, closed_connection()[:-1]) == []
    (flow,) = _poll(s, T0 + 3 * S)
    assert flow.end_reason == "fin"


def _poll(s: Sensor, at: int) -> list[events_pb2.FlowEvent]:
    return [e.flow for e in s.poll(at) if e.WhichOneof("payload") == "flow"]


def test_rst_ends_the_flow() -> None:
    s = sensor()
    frames = [*handshake(), tcp("RA", SERVER, CLIENT, 443, 40000, T0 + 5000)]
    (flow,) = run(s, frames)
    assert (flow.end_reason, flow.packets_to_client) == ("rst", 2)


def test_idle_timeout() -> None:
    s = sensor(flow_idle_timeout_s=30)
    assert run(s, handshake(), poll_at=T0 + 29 * S) == []
    (flow,) = _poll(s, T0 + 31 * S)
    assert flow.end_reason == "idle"


def test_active_timeout_cuts_a_long_flow_into_records() -> None:
    s = sensor(flow_active_timeout_s=10, flow_idle_timeout_s=60)
    frames = handshake() + [tcp("A", sport=40000, t=T0 + i * S) for i in range(1, 26)]
    flows = run(s, frames)
    assert [f.end_reason for f in flows] == ["active_timeout", "active_timeout"]
    assert [f.packets_to_server for f in flows] == [2 + 9, 10]
    assert flows[1].first_seen_ns == T0 + 10 * S
    (last,) = [e.flow for e in s.flush(T0 + 30 * S) if e.WhichOneof("payload") == "flow"]
    assert (last.end_reason, last.packets_to_server) == ("shutdown", 6)


def test_syn_ack_seen_first_makes_its_sender_the_server() -> None:
    s = sensor()
    frames = [tcp("SA", SERVER, CLIENT, 443, 40000), tcp("A", CLIENT, SERVER, 40000, 443, T0 + 1)]
    (flow,) = [e.flow for e in run_flush(s, frames)]
    assert (flow.src_ip, flow.dst_ip, flow.dst_port) == (CLIENT, SERVER, 443)
    assert (flow.packets_to_server, flow.packets_to_client) == (1, 1)


def run_flush(s: Sensor, frames: list[Frame]) -> list[events_pb2.Event]:
    for f in frames:
        s.feed(f)
    return [e for e in s.flush(frames[-1].time_ns) if e.WhichOneof("payload") == "flow"]


def test_direction_relative_to_the_host() -> None:
    def direction(src: str, dst: str, host: frozenset[str]) -> str:
        s = sensor(host)
        (event,) = run_flush(s, [udp(src, dst, 5000, 6000), udp(dst, src, 6000, 5000)])
        return event.flow.direction

    host = frozenset({"10.0.0.1", "fe80::1"})
    assert direction("10.0.0.1", "192.0.2.9", host) == "outbound"
    assert direction("192.0.2.9", "10.0.0.1", host) == "inbound"
    assert direction("10.0.0.1", "10.0.0.1", host) == "internal"
    assert direction("192.0.2.8", "192.0.2.9", host) == "external"
    assert direction("192.0.2.8", "192.0.2.9", frozenset()) == "unknown"


def test_eviction_of_least_recently_seen() -> None:
    table = FlowTable(
        max_flows=100, idle_timeout_ns=60 * S, active_timeout_ns=300 * S, budget_window_ns=10 * S
    )
    for i in range(100):
        for f in handshake(sport=10000 + i, t=T0 + i):
            table.update(decode(f))
    table.update(decode(tcp("A", sport=10000, t=T0 + 1000)))  # flow 0 becomes the most recent
    table.update(decode(handshake(sport=20000, t=T0 + 2000)[0]))
    assert len(table) == 100
    assert table.evicted == 1
    (ended,) = table.drain()
    assert (ended.reason, ended.flow.client_port) == ("evicted", 10001)


def test_spoofed_flood_keeps_the_table_bounded_and_the_output_small() -> None:
    s = sensor(max_flows=100, max_attempt_keys=500)
    emitted = 0
    for i in range(5000):
        src = f"198.18.{i // 250}.{i % 250 + 1}"
        s.feed(fast_tcp(SYN, src, SERVER, 1024 + i, 443, T0 + i * 1000))
        s.feed(fast_tcp(SYN | ACK, SERVER, src, 443, 1024 + i, T0 + i * 1000 + 1))
        assert s.health.flows_active <= 100
        if i % 500 == 0:
            emitted += len(s.poll(T0 + i * 1000))
    emitted += len(s.flush(T0 + 10 * S))
    h = s.health
    assert h.flows_evicted == 4900
    # Evicted attempt flows are summarised, the last 100 are within the budget.
    assert h.flows_summarised == 4900
    assert emitted <= 100 + 2  # + the attempt summaries
