"""Bad input never escapes feed(): random bytes, truncations, scapy-fuzzed packets."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import fuzz

from agent.netsensor.decode import decode
from agent.netsensor.dns import DnsParseError, parse_dns
from agent.netsensor.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    DecodeError,
    Frame,
)
from agent.netsensor.sensor import Sensor
from tests.agent.netsensor.corepackets import (
    T0,
    config,
    context,
    dns_answer,
    dns_query,
    eth,
    handshake,
    unreachable,
)

LINKTYPES = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2]
VALID = [
    f.data
    for f in [*handshake(), dns_query(), dns_answer(), unreachable("192.0.2.1", "192.0.2.2", 53)]
]


def expected_failures(frames: list[Frame]) -> int:
    failures = 0
    for f in frames:
        try:
            decode(f)
        except DecodeError:
            failures += 1
    return failures


def feed_all(frames: list[Frame]) -> Sensor:
    s = Sensor(config(max_flows=100, max_attempt_keys=100), context(), interface="eth0")
    for f in frames:
        s.feed(f)
    s.poll(T0 + 3600 * 10**9)
    s.flush(T0 + 3600 * 10**9)
    h = s.health
    assert h.packets == len(frames)
    assert "internal_error" not in h.decode_failures
    assert sum(h.decode_failures.values()) == expected_failures(frames)
    return s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=200), st.sampled_from(LINKTYPES)), max_size=20))
def test_random_bytes(items: list[tuple[bytes, int]]) -> None:
    feed_all([Frame(data, T0 + i, linktype) for i, (data, linktype) in enumerate(items)])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID), st.integers(min_value=0, max_value=200), st.data())
def test_truncated_and_mutated_valid_packets(data: bytes, cut: int, draw: st.DataObject) -> None:
    mutated = bytearray(data[:cut])
    if mutated:
        at = draw.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[at] = draw.draw(st.integers(min_value=0, max_value=255))
    feed_all([Frame(data[:cut], T0), Frame(bytes(mutated), T0 + 1)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_dns_parser_only_raises_parse_errors(data: bytes, tcp: bool) -> None:
    with contextlib.suppress(DnsParseError):
        parse_dns(data, tcp=tcp)


def test_scapy_fuzzed_packets() -> None:
    templates = [
        eth() / fuzz(IP() / TCP()),
        eth() / fuzz(IP() / UDP(dport=53) / DNS(qd=DNSQR())),
        eth() / fuzz(IP() / ICMP()),
        eth() / fuzz(IPv6() / TCP()),
        eth() / IP() / UDP(sport=53) / fuzz(DNS(qd=DNSQR())),
    ]
    frames = [Frame(bytes(t), T0 + i) for i in range(60) for t in templates]
    feed_all(frames)
