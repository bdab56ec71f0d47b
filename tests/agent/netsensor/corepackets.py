"""Packet builders shared by the sensor-core tests (scapy -> bytes -> Frame)."""

from __future__ import annotations

import socket
import struct
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from agent.netsensor.config import NetSensorConfig
from agent.netsensor.packet import LINKTYPE_ETHERNET, Frame
from agent.sources.base import SourceContext

S = 1_000_000_000
T0 = 1_700_000_000 * S
CLIENT = "10.20.1.45"
SERVER = "10.20.1.10"


def eth(**fields: Any) -> Any:
    """An Ethernet header with fixed MACs (scapy would otherwise look them up)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **fields)


def frame(pkt: Any, t: int = T0, linktype: int = LINKTYPE_ETHERNET) -> Frame:
    data = bytes(pkt)
    return Frame(data=data, time_ns=t, linktype=linktype, wire_length=len(data))


def tcp(
    flags: str,
    src: str = CLIENT,
    dst: str = SERVER,
    sport: int = 40000,
    dport: int = 443,
    t: int = T0,
    payload: bytes = b"",
) -> Frame:
    ip: Any = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return frame(eth() / ip / TCP(sport=sport, dport=dport, flags=flags) / payload, t)


def udp(src: str, dst: str, sport: int, dport: int, payload: Any = b"", t: int = T0) -> Frame:
    return frame(eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload, t)


def handshake(
    src: str = CLIENT, dst: str = SERVER, sport: int = 40000, dport: int = 443, t: int = T0
) -> list[Frame]:
    return [
        tcp("S", src, dst, sport, dport, t),
        tcp("SA", dst, src, dport, sport, t + 1000),
        tcp("A", src, dst, sport, dport, t + 2000),
    ]


def dns_query(name: str = "www.example.vn", qtype: str = "A", t: int = T0) -> Frame:
    msg = DNS(id=0x1234, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    return udp(CLIENT, "10.20.0.53", 53000, 53, msg, t)


def dns_answer(t: int = T0) -> Frame:
    msg = DNS(
        id=0x1234,
        qr=1,
        qd=DNSQR(qname="www.example.vn", qtype="A"),
        an=[
            DNSRR(rrname="www.example.vn", type="CNAME", rdata="web.example.vn", ttl=60),
            DNSRR(rrname="web.example.vn", type="A", rdata="192.0.2.7", ttl=30),
        ],
    )
    return udp("10.20.0.53", CLIENT, 53, 53000, msg, t)


def unreachable(prober: str, target: str, dport: int, t: int = T0) -> Frame:
    quoted = IP(src=prober, dst=target) / UDP(sport=55555, dport=dport)
    return frame(eth() / IP(src=target, dst=prober) / ICMP(type=3, code=3) / quoted, t)


def context() -> SourceContext:
    return SourceContext(agent_id="agent-1", host="web1", clock_ns=lambda: T0)


def config(**overrides: Any) -> NetSensorConfig:
    return NetSensorConfig(**overrides)


_TEMPLATE = bytearray(bytes(eth() / IP(src="0.0.0.0", dst="0.0.0.0") / TCP()))


def fast_tcp(flags: int, src: str, dst: str, sport: int, dport: int, t: int) -> Frame:
    """An IPv4 TCP frame patched from a template (checksums left stale): for volume tests."""
    data = _TEMPLATE[:]
    data[26:30] = socket.inet_aton(src)
    data[30:34] = socket.inet_aton(dst)
    struct.pack_into("!HH", data, 34, sport, dport)
    data[47] = flags
    return Frame(bytes(data), t, LINKTYPE_ETHERNET, len(data))
