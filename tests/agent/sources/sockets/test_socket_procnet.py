"""Parsing of /proc/net/tcp* and udp* rows as the kernel writes them on a little-endian host."""

from __future__ import annotations

import pytest

from agent.sources.sockets.procnet import ParseError, decode_address, parse_line, parse_table

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)
# Real rows copied from a Debian 12 host.
TCP_LISTEN = (
    "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
    "   101        0 4781 1 00000000ff8cbb9a 100 0 0 10 0"
)
TCP6_LISTEN = (
    "   1: 00000000000000000000000001000000:1111 00000000000000000000000000000000:0000 0A"
    " 00000000:00000000 00:00000000 00000000   106        0 5640 1 000000000e53aaa0 100 0 0 10 0"
)


def test_ipv4_row() -> None:
    e = parse_line(TCP_LISTEN, "tcp", "little")
    assert e is not None
    assert (e.transport, e.local_ip, e.local_port) == ("tcp", "127.0.0.1", 5432)
    assert (e.remote_ip, e.remote_port, e.state, e.uid, e.inode) == (
        "0.0.0.0",
        0,
        "LISTEN",
        101,
        4781,
    )


def test_ipv6_row_uses_host_order_words() -> None:
    e = parse_line(TCP6_LISTEN, "tcp", "little")
    assert e is not None
    assert (e.local_ip, e.local_port, e.state, e.uid, e.inode) == ("::1", 4369, "LISTEN", 106, 5640)


@pytest.mark.parametrize(
    ("hexaddr", "ip"),
    [
        ("0100007F", "127.0.0.1"),
        ("0202000A", "10.0.2.2"),
        ("00000000000000000000000000000000", "::"),
        ("B80D0120000000000000000001000000", "2001:db8::1"),
        ("0000000000000000FFFF00000500000A", "10.0.0.5"),  # IPv4-mapped shown as IPv4
        ("000080FE00000000FF00FC00010000FE", "fe80::fc:ff:fe00:1"),
    ],
)
def test_decode_address(hexaddr: str, ip: str) -> None:
    assert decode_address(hexaddr, "little") == ip


def test_big_endian_host() -> None:
    assert decode_address("7F000001", "big") == "127.0.0.1"


def test_bad_rows_give_reasons() -> None:
    text = HEADER + "\n".join(
        [
            TCP_LISTEN,
            "   1: garbage",
            "   2: 0100007F:1538 00000000:0000 FF 0:0 00:0 0 0 0 77",
            "   3: 0100007G:1538 00000000:0000 0A 0:0 00:0 0 0 0 77",
            "   4: 0100007F:1538 00000000:0000 0A 0:0 00:0 0 x 0 77",
            "   5: 0100:1538 00000000:0000 0A 0:0 00:0 0 0 0 77",
            "",
        ]
    )
    rows = list(parse_table(text, "tcp", "little"))
    reasons = [r.reason for r in rows if isinstance(r, ParseError)]
    assert reasons == ["short_line", "bad_state", "bad_address", "bad_number", "bad_address"]
    assert len(rows) == 6


def test_unwanted_states_are_skipped_before_decoding() -> None:
    time_wait = "   7: 0100007F:1538 0100007F:9C40 06 0:0 00:0 0 0 0 0"
    text = HEADER + TCP_LISTEN + "\n" + time_wait + "\n"
    rows = list(parse_table(text, "tcp", "little", wanted={"LISTEN"}))
    assert [r.state for r in rows if not isinstance(r, ParseError)] == ["LISTEN"]
    assert len(rows) == 1
    assert parse_line(time_wait, "tcp", "little", wanted={"LISTEN", "ESTABLISHED"}) is None
