"""decode(): link layers, IPv4/IPv6, fragments, L4 headers, ICMP quotes, failure reasons."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q

from agent.netsensor.decode import decode
from agent.netsensor.packet import (
    ACK,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    SYN,
    DecodeError,
    Frame,
)
from tests.agent.netsensor.corepackets import T0, eth, frame, tcp, udp


def test_ethernet_ipv4_tcp() -> None:
    p = decode(tcp("SA", "192.0.2.1", "192.0.2.2", 443, 50000))
    assert (p.ip_version, p.src, p.dst, p.proto) == (4, "192.0.2.1", "192.0.2.2", IPPROTO_TCP)
    assert (p.sport, p.dport, p.tcp_flags, p.length) == (443, 50000, SYN | ACK, 40)
    assert p.time_ns == T0
    assert p.payload == b""  # only DNS keeps its payload


def test_vlan_tags_and_ip_options() -> None:
    pkt = (
        eth()
        / Dot1Q(vlan=10)
        / Dot1Q(vlan=20)
        / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()])
        / UDP(sport=1234, dport=5678)
    )
    p = decode(frame(pkt))
    assert (p.src, p.dst, p.proto, p.sport, p.dport) == ("10.0.0.1", "10.0.0.2", 17, 1234, 5678)


def _sll(ip: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x00" * 8, 0x0800) + ip


def _sll2(ip: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, b"\x00" * 8) + ip


def test_linux_cooked_and_raw_link_types() -> None:
    v4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=22, flags="S"))
    v6 = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5, dport=6))
    assert decode(Frame(_sll(v4), T0, LINKTYPE_LINUX_SLL)).dport == 22
    assert decode(Frame(_sll2(v6), T0, LINKTYPE_LINUX_SLL2)).src == "2001:db8::1"
    assert decode(Frame(v4, T0, LINKTYPE_RAW)).proto == IPPROTO_TCP
    assert decode(Frame(v6, T0, LINKTYPE_RAW)).ip_version == 6


def test_ipv6_extension_headers_are_skipped() -> None:
    pkt = (
        eth()
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(offset=0, m=1)
        / TCP(sport=33000, dport=80, flags="S")
    )
    p = decode(frame(pkt))
    assert (p.proto, p.sport, p.dport, p.fragment) == (IPPROTO_TCP, 33000, 80, False)


def test_non_first_fragments_have_no_ports() -> None:
    v4 = decode(frame(eth() / IP(src="10.0.0.1", dst="10.0.0.2", frag=185, proto=17) / b"x"))
    assert v4.fragment
    assert (v4.proto, v4.sport, v4.dport) == (IPPROTO_UDP, 0, 0)
    v6 = decode(frame(eth() / IPv6() / IPv6ExtHdrFragment(offset=100, nh=17) / (b"x" * 8)))
    assert v6.fragment
    assert v6.proto == IPPROTO_UDP
    first = decode(frame(eth() / IP(flags="MF", frag=0) / UDP(sport=9, dport=10)))
    assert not first.fragment
    assert first.dport == 10


def test_icmp_unreachable_quotes_the_probe() -> None:
    quoted = IP(src="198.51.100.9", dst="10.0.0.5") / UDP(sport=40000, dport=161)
    p = decode(
        frame(eth() / IP(src="10.0.0.5", dst="198.51.100.9") / ICMP(type=3, code=3) / quoted)
    )
    assert (p.proto, p.icmp_type, p.icmp_code) == (IPPROTO_ICMP, 3, 3)
    assert (p.quoted_dst, p.quoted_proto, p.quoted_dport) == ("10.0.0.5", IPPROTO_UDP, 161)
    q6 = IPv6(src="2001:db8::9", dst="2001:db8::5") / TCP(sport=1, dport=8080)
    p6 = decode(
        frame(eth() / IPv6(src="2001:db8::5", dst="2001:db8::9") / ICMPv6DestUnreach(code=4) / q6)
    )
    assert (p6.proto, p6.icmp_type, p6.icmp_code) == (IPPROTO_ICMPV6, 1, 4)
    assert (p6.quoted_dst, p6.quoted_proto, p6.quoted_dport) == ("2001:db8::5", IPPROTO_TCP, 8080)
    echo = decode(frame(eth() / IP() / ICMP(type=8)))
    assert (echo.icmp_type, echo.quoted_dst) == (8, "")


def test_dns_payload_is_kept_for_port_53_only() -> None:
    assert decode(udp("10.0.0.1", "10.0.0.53", 5000, 53, b"abc")).payload == b"abc"
    assert decode(udp("10.0.0.1", "10.0.0.9", 5000, 54, b"abc")).payload == b""
    assert decode(tcp("PA", dport=53, payload=b"\x00\x01z")).payload == b"\x00\x01z"


def test_snaplen_cut_packet_keeps_wire_length() -> None:
    data = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / (b"x" * 1000))
    p = decode(Frame(data[:80], T0))
    assert p.length == 1040
    assert p.proto == IPPROTO_TCP


@pytest.mark.parametrize(
    ("data", "linktype", "reason"),
    [
        (b"\x00" * 10, 1, "truncated_ethernet"),
        (bytes(eth(type=0x0806) / (b"\x00" * 28)), 1, "not_ip"),
        (b"\x45" + b"\x00" * 30, 147, "unsupported_linktype"),
        (bytes(eth() / IP())[:20], 1, "truncated_ip"),
        (bytes(eth(type=0x0800)) + b"\x46" + b"\x00" * 19, 1, "bad_ip_header"),
        (bytes(eth() / IP() / TCP())[:44], 1, "truncated_tcp"),
        (bytes(eth() / IP() / UDP())[:38], 1, "truncated_udp"),
        (bytes(eth() / IP(proto=1))[:34] + b"\x08", 1, "truncated_icmp"),
        (b"", LINKTYPE_RAW, "truncated_ip"),
        (b"\x00" * 10, LINKTYPE_LINUX_SLL, "truncated_sll"),
    ],
)
def test_failures_have_reasons(data: bytes, linktype: int, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode(Frame(data, T0, linktype))
    assert err.value.reason == reason


def test_ipv6_addresses_render_compressed() -> None:
    p = decode(tcp("S", "2001:db8::1", "2001:db8:0:0:1::2"))
    assert (p.ip_version, p.src, p.dst) == (6, "2001:db8::1", "2001:db8::1:0:0:2")
