"""The network sensor core alone: frames/s through decode() and through Sensor.feed().

Builds a realistic mix of frames in memory (scapy once per template, then the bytes are reused
with addresses and ports patched by `struct`): interleaved TCP connections from a few hundred
clients to a handful of servers (handshake, request/response segments, FIN close), DNS queries
and answers over UDP, ICMP echo, and a slow SYN scan in the background. Then it times decode()
and Sensor.feed() (flow accounting, attempt windows, DNS dissection, with poll() every 10,000
frames as the source would) on this one process (one core).

Targets: decode >= 150,000 frames/s; Sensor.feed >= 100,000 frames/s.

    .venv/bin/python bench/netsensor_core.py --frames 300000
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import tempfile
import time
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from agent.netsensor.config import NetSensorConfig
from agent.netsensor.decode import decode
from agent.netsensor.packet import ACK, FIN, PSH, RST, SYN, Frame
from agent.netsensor.replay import replay_events
from agent.netsensor.sensor import Sensor
from agent.sources.base import SourceContext

S = 1_000_000_000
T0 = 1_700_000_000 * S
DECODE_TARGET = 150_000
FEED_TARGET = 100_000
SERVERS = [f"10.20.1.{i}" for i in range(10, 16)]
SERVER_PORTS = [443, 443, 443, 80, 22, 3306, 5432]
_templates: dict[tuple[int, int], bytes] = {}


def eth() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def tcp_frame(flags: int, src: str, dst: str, sport: int, dport: int, size: int, t: int) -> Frame:
    template = _templates.get((flags, size))
    if template is None:
        pkt = eth() / IP(src="0.0.0.0", dst="0.0.0.0") / TCP(flags=flags) / (b"x" * size)
        template = _templates[(flags, size)] = bytes(pkt)
    data = bytearray(template)
    data[26:30] = socket.inet_aton(src)
    data[30:34] = socket.inet_aton(dst)
    struct.pack_into("!HH", data, 34, sport, dport)
    return Frame(bytes(data), t, 1, len(data))


def udp_frame(template: bytes, src: str, dst: str, sport: int, dport: int, t: int) -> Frame:
    data = bytearray(template)
    data[26:30] = socket.inet_aton(src)
    data[30:34] = socket.inet_aton(dst)
    struct.pack_into("!HH", data, 34, sport, dport)
    return Frame(bytes(data), t, 1, len(data))


def connection(
    rng: random.Random, client: str, sport: int
) -> list[tuple[int, str, str, int, int, int]]:
    """One TCP connection as (flags, src, dst, sport, dport, payload size) segments."""
    server, dport = rng.choice(SERVERS), rng.choice(SERVER_PORTS)
    up = (client, server, sport, dport)
    down = (server, client, dport, sport)
    segments = [(SYN, *up, 0), (SYN | ACK, *down, 0), (ACK, *up, 0)]
    for _ in range(rng.randint(2, 30)):
        segments.append((PSH | ACK, *up, rng.choice((80, 300, 600))))
        segments.append((PSH | ACK, *down, rng.choice((600, 1400, 1400))))
        segments.append((ACK, *up, 0))
    segments += [(FIN | ACK, *up, 0), (FIN | ACK, *down, 0), (ACK, *up, 0)]
    return segments


def build(count: int, seed: int = 7) -> list[Frame]:
    rng = random.Random(seed)
    query = bytes(eth() / IP() / UDP() / DNS(id=1, rd=1, qd=DNSQR(qname="www.example.vn")))
    answer = bytes(
        eth()
        / IP()
        / UDP()
        / DNS(
            id=1,
            qr=1,
            qd=DNSQR(qname="www.example.vn"),
            an=[DNSRR(rrname="www.example.vn", rdata="192.0.2.7", ttl=60)],
        )
    )
    ping = bytes(eth() / IP() / ICMP() / (b"p" * 56))
    clients = [f"10.{20 + i // 60000}.{i // 250 % 250}.{i % 250 + 1}" for i in range(600)]
    active: list[list[tuple[int, str, str, int, int, int]]] = []
    frames: list[Frame] = []
    t = T0
    sport = 20000
    scan_port = 1
    while len(frames) < count:
        t += rng.randint(1_000, 40_000)  # ~50k frames/s of traffic time
        roll = rng.random()
        if roll < 0.03:
            client = rng.choice(clients)
            frames.append(
                udp_frame(query, client, "10.20.0.53", 30000 + len(frames) % 30000, 53, t)
            )
            frames.append(
                udp_frame(answer, "10.20.0.53", client, 53, 30000 + len(frames) % 30000, t)
            )
        elif roll < 0.05:
            frames.append(udp_frame(ping, rng.choice(clients), rng.choice(SERVERS), 0, 0, t))
        elif roll < 0.06:
            frames.append(tcp_frame(SYN, "203.0.113.90", SERVERS[0], 61000, scan_port, 0, t))
            frames.append(tcp_frame(RST | ACK, SERVERS[0], "203.0.113.90", scan_port, 61000, 0, t))
            scan_port = scan_port % 65535 + 1
        else:
            if len(active) < 400 and (not active or rng.random() < 0.05):
                sport = sport + 1 if sport < 60999 else 20000
                active.append(connection(rng, rng.choice(clients), sport))
            conn = active[rng.randrange(len(active))]
            flags, src, dst, sp, dp, size = conn.pop(0)
            frames.append(tcp_frame(flags, src, dst, sp, dp, size, t))
            if not conn:
                active.remove(conn)
    return frames[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    args = parser.parse_args()
    frames = build(args.frames)

    start = time.perf_counter()
    for f in frames:
        decode(f)
    decode_rate = len(frames) / (time.perf_counter() - start)

    ctx = SourceContext(agent_id="bench", host="bench", clock_ns=lambda: T0)
    sensor = Sensor(NetSensorConfig(), ctx, interface="eth0", host_addresses=frozenset(SERVERS))
    events = 0
    start = time.perf_counter()
    for i, f in enumerate(frames):
        sensor.feed(f)
        if i % 10_000 == 0:
            events += len(sensor.poll(f.time_ns))
    events += len(sensor.flush(frames[-1].time_ns))
    feed_rate = len(frames) / (time.perf_counter() - start)

    h = sensor.health
    print(f"frames: {len(frames):,}  events: {events:,}  by kind: {h.events}")
    print(f"decode failures: {h.decode_failures}  flows evicted: {h.flows_evicted:,}")
    replay_rate = _replay_rate(frames, ctx)
    for name, rate, target in (
        ("decode()", decode_rate, DECODE_TARGET),
        ("Sensor.feed()", feed_rate, FEED_TARGET),
        ("pcap replay", replay_rate, FEED_TARGET),
    ):
        verdict = "OK" if rate >= target else "BELOW TARGET"
        print(f"{name:14} {rate:12,.0f} frames/s  (target {target:,}: {verdict})")


def _replay_rate(frames: list[Frame], ctx: SourceContext) -> float:
    """Frames/s of `canhgac-agent replay`'s path: the frames written to a pcap file, then read
    back (scapy's raw reader, no dissection) and run through a new sensor."""
    from scapy.utils import RawPcapWriter

    with tempfile.TemporaryDirectory(prefix="canhgac-pcap-") as tmp:
        path = Path(tmp) / "bench.pcap"
        writer = RawPcapWriter(str(path), linktype=1, nano=True, sync=False)
        writer.write_header(None)
        for f in frames:
            sec, nsec = divmod(f.time_ns, 1_000_000_000)
            writer.write_packet(f.data, sec=sec, usec=nsec, caplen=len(f.data), wirelen=len(f.data))
        writer.close()
        start = time.perf_counter()
        count = sum(1 for _ in replay_events(path, NetSensorConfig(), ctx, interface="eth0"))
        rate = len(frames) / (time.perf_counter() - start)
    print(f"pcap replay: {len(frames):,} frames -> {count:,} events")
    return rate


if __name__ == "__main__":
    main()
