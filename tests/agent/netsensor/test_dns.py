"""DNS dissection: names with compression, record data, rcodes, TCP framing, malformed input."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRMX, DNSRRSOA, DNSRRSRV, dns_compress

from agent.netsensor.dns import DnsParseError, parse_dns
from agent.netsensor.sensor import MAX_DNS_EVENTS_PER_S, Sensor
from tests.agent.netsensor.corepackets import CLIENT, config, context, dns_answer, dns_query, tcp


def wire(msg: DNS, compress: bool = True) -> bytes:
    # scapy ships no type annotations for dns_compress.
    return bytes(dns_compress(msg)) if compress else bytes(msg)  # type: ignore[no-untyped-call]


def test_query() -> None:
    msg = parse_dns(wire(DNS(id=7, rd=1, qd=DNSQR(qname="WWW.Example.VN.", qtype="AAAA"))))
    assert (msg.transaction_id, msg.is_response, msg.rcode) == (7, False, "")
    assert (msg.query_name, msg.query_type, msg.answers) == ("www.example.vn", "AAAA", ())


def test_answers_with_compression() -> None:
    msg = DNS(
        id=9,
        qr=1,
        qd=DNSQR(qname="www.example.vn"),
        an=[
            DNSRR(rrname="www.example.vn", type="CNAME", rdata="web.example.vn", ttl=60),
            DNSRR(rrname="web.example.vn", type="A", rdata="192.0.2.7", ttl=30),
            DNSRR(rrname="web.example.vn", type="AAAA", rdata="2001:db8::7", ttl=30),
        ],
    )
    data = wire(msg)
    assert b"\xc0" in data  # pointers in use
    parsed = parse_dns(data)
    assert parsed.rcode == "NOERROR"
    assert [(a.name, a.type, a.data, a.ttl) for a in parsed.answers] == [
        ("www.example.vn", "CNAME", "web.example.vn", 60),
        ("web.example.vn", "A", "192.0.2.7", 30),
        ("web.example.vn", "AAAA", "2001:db8::7", 30),
    ]


def test_record_types_render_as_text() -> None:
    msg = DNS(
        qr=1,
        qd=DNSQR(qname="example.vn", qtype=255),
        an=[
            DNSRR(rrname="example.vn", type="TXT", rdata=["v=spf1 ", "-all"]),
            DNSRRMX(rrname="example.vn", preference=10, exchange="mail.example.vn"),
            DNSRRSRV(
                rrname="_sip._tcp.example.vn",
                priority=1,
                weight=5,
                port=5060,
                target="sip.example.vn",
            ),
            DNSRRSOA(
                rrname="example.vn", mname="ns1.example.vn", rname="admin.example.vn", serial=7
            ),
            DNSRR(rrname="example.vn", type="NS", rdata="ns1.example.vn"),
            DNSRR(rrname="7.2.0.192.in-addr.arpa", type="PTR", rdata="web.example.vn"),
            DNSRR(rrname="example.vn", type=4242, rdata=b"\x01\x02"),
        ],
    )
    parsed = parse_dns(wire(msg, compress=False))
    assert parsed.query_type == "ANY"
    assert [(a.type, a.data) for a in parsed.answers] == [
        ("TXT", "v=spf1 -all"),
        ("MX", "10 mail.example.vn"),
        ("SRV", "1 5 5060 sip.example.vn"),
        ("SOA", "ns1.example.vn admin.example.vn 7 0 0 0 0"),
        ("NS", "ns1.example.vn"),
        ("PTR", "web.example.vn"),
        ("TYPE4242", "\\# 2 0102"),
    ]


def test_nxdomain_and_unknown_query_type() -> None:
    parsed = parse_dns(wire(DNS(qr=1, rcode=3, qd=DNSQR(qname="nope.example.vn", qtype=65280))))
    assert (parsed.rcode, parsed.query_type, parsed.answers) == ("NXDOMAIN", "TYPE65280", ())


def test_tcp_length_prefix() -> None:
    body = wire(DNS(id=3, qd=DNSQR(qname="zone.example.vn", qtype="AXFR")))
    parsed = parse_dns(struct.pack("!H", len(body)) + body, tcp=True)
    assert (parsed.query_name, parsed.query_type) == ("zone.example.vn", "AXFR")
    with pytest.raises(DnsParseError) as err:
        parse_dns(struct.pack("!H", len(body) + 5) + body, tcp=True)
    assert err.value.reason == "tcp_incomplete"


def test_odd_bytes_in_labels_are_escaped() -> None:
    data = struct.pack("!6H", 1, 0, 1, 0, 0, 0) + b"\x03a.b\x02\xff\x00\x00\x00\x01\x00\x01"
    assert parse_dns(data).query_name == "a\\046b.\\255\\000"


HEADER = struct.pack("!6H", 1, 0x8180, 1, 1, 0, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x01", "truncated_header"),
        (struct.pack("!6H", 1, 0, 0, 0, 0, 0), "no_question"),
        (HEADER + b"\x03www", "truncated_name"),
        (HEADER + b"\xc0\x0c\x00\x01\x00\x01", "bad_pointer"),  # points at itself
        (HEADER + b"\x01a\xc0\x0e\x00\x01\x00\x01", "bad_pointer"),  # points forward
        (HEADER + b"\x01a\x00\x00\x01", "truncated_question"),
        (HEADER + b"\x01a\x00\x00\x01\x00\x01\xc0\x0c\x00\x01", "truncated_answer"),
        (
            HEADER
            + b"\x01a\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x03abc",
            "bad_rdata",
        ),
        (HEADER + b"\x81a\x00\x00\x01\x00\x01", "bad_label"),
        (
            HEADER + b"\x3f" + b"a" * 63 + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01",
            "name_too_long",
        ),
    ],
)
def test_malformed_messages_raise_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(DnsParseError) as err:
        parse_dns(data)
    assert err.value.reason == reason


def test_pointer_chain_loop_is_stopped() -> None:
    # Two names pointing at each other: every pointer must go backwards, so this stops.
    data = HEADER + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01"
    with pytest.raises(DnsParseError):
        parse_dns(data)


def test_sensor_emits_query_and_answer_events() -> None:
    s = Sensor(config(), context(), interface="eth0")
    s.feed(dns_query())
    s.feed(dns_answer())
    s.feed(tcp("PA", CLIENT, "10.20.0.53", 40000, 53, payload=b"\x00\x30garbage"))
    events = s.flush(dns_answer().time_ns)
    dns = [e for e in events if e.WhichOneof("payload") == "dns"]
    assert [(e.category, e.type, e.action, e.source) for e in dns] == [
        ("network", "protocol", "dns_query", "netsensor"),
        ("network", "protocol", "dns_answer", "netsensor"),
    ]
    query, answer = dns[0].dns, dns[1].dns
    assert (query.client_ip, query.client_port, query.server_ip, query.server_port) == (
        CLIENT,
        53000,
        "10.20.0.53",
        53,
    )
    assert (query.query_length, query.transport, query.transaction_id) == (14, "udp", 0x1234)
    assert (answer.client_ip, answer.server_port, answer.rcode) == (CLIENT, 53, "NOERROR")
    assert [a.data for a in answer.answers] == ["web.example.vn", "192.0.2.7"]
    assert s.health.dns_parse_failures == {"tcp_incomplete": 1}


def test_dns_can_be_switched_off() -> None:
    s = Sensor(config(dns=False), context(), interface="eth0")
    s.feed(dns_query())
    assert [e for e in s.flush(dns_query().time_ns) if e.WhichOneof("payload") == "dns"] == []


def test_a_dns_flood_is_capped_per_second() -> None:
    s = Sensor(config(), context(), interface="eth0")
    query = dns_query()
    for _ in range(MAX_DNS_EVENTS_PER_S + 10):
        s.feed(query)
    events = s.poll(query.time_ns)
    assert len(events) == MAX_DNS_EVENTS_PER_S
    assert s.health.dns_events_dropped == 10
    s.feed(dns_query(t=query.time_ns + 10**9))
    assert len(s.poll(query.time_ns + 10**9)) == 1
