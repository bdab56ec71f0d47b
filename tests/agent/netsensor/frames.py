"""Canned frames for the capture, replay and source tests (built with scapy, test-only)."""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from agent.netsensor.packet import Frame

CLIENT = "10.213.7.1"
SERVER = "10.213.7.2"
T0 = 1_790_000_000_000_000_000
MS = 1_000_000


def eth(payload: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / payload)


def frame(data: bytes, t: int) -> Frame:
    return Frame(data, t, wire_length=len(data))


def tcp_session(t: int = T0, sport: int = 40000, dport: int = 22) -> list[Frame]:
    """A complete TCP connection CLIENT -> SERVER: handshake, data both ways, FIN both ways."""
    c, s = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    steps = [
        c / TCP(sport=sport, dport=dport, flags="S", seq=100),
        s / TCP(sport=dport, dport=sport, flags="SA", seq=500, ack=101),
        c / TCP(sport=sport, dport=dport, flags="A", seq=101, ack=501),
        c / TCP(sport=sport, dport=dport, flags="PA", seq=101, ack=501) / (b"x" * 40),
        s / TCP(sport=dport, dport=sport, flags="PA", seq=501, ack=141) / (b"y" * 80),
        c / TCP(sport=sport, dport=dport, flags="FA", seq=141, ack=581),
        s / TCP(sport=dport, dport=sport, flags="FA", seq=581, ack=142),
        c / TCP(sport=sport, dport=dport, flags="A", seq=142, ack=582),
    ]
    return [frame(eth(p), t + i * MS) for i, p in enumerate(steps)]


def dns_exchange(t: int = T0, name: str = "example.test") -> list[Frame]:
    """An A query from CLIENT to SERVER:53 and its answer 10.213.7.99."""
    q = DNS(id=0x1234, rd=1, qd=DNSQR(qname=name, qtype="A"))
    r = DNS(
        id=0x1234,
        qr=1,
        aa=1,
        rd=1,
        qd=DNSQR(qname=name, qtype="A"),
        an=DNSRR(rrname=name, type="A", ttl=300, rdata="10.213.7.99"),
    )
    return [
        frame(eth(IP(src=CLIENT, dst=SERVER) / UDP(sport=53000, dport=53) / q), t),
        frame(eth(IP(src=SERVER, dst=CLIENT) / UDP(sport=53, dport=53000) / r), t + MS),
    ]


def syn_scan(t: int = T0, ports: range = range(1, 41)) -> list[Frame]:
    """SYNs from CLIENT to each port of SERVER, each answered by RST-ACK."""
    out: list[Frame] = []
    for i, port in enumerate(ports):
        syn = IP(src=CLIENT, dst=SERVER) / TCP(sport=61000, dport=port, flags="S", seq=7)
        rst = IP(src=SERVER, dst=CLIENT) / TCP(sport=port, dport=61000, flags="RA", ack=8)
        out.append(frame(eth(syn), t + 2 * i * MS))
        out.append(frame(eth(rst), t + (2 * i + 1) * MS))
    return out


def udp_flows(n: int, t: int = T0) -> list[Frame]:
    """One UDP packet each to `n` distinct ports: n flows."""
    return [
        frame(eth(IP(src=CLIENT, dst=SERVER) / UDP(sport=50000, dport=1000 + i) / b"z"), t + i)
        for i in range(n)
    ]
