"""Parsing of the kernel's socket tables: /proc/net/tcp, tcp6, udp and udp6.

Each line after the header describes one socket:

    sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
     0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101      0 4781

Addresses are the raw `__be32` (IPv4) or four `__be32` words (IPv6) printed with `%08X`, i.e.
read as host-order integers: on a little-endian host 127.0.0.1 prints as 0100007F. Ports are
plain hex numbers in host order. `byteorder` is the order of the host that wrote the file.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Final, Literal

ByteOrder = Literal["little", "big"]

# include/net/tcp_states.h
TCP_STATES: Final[dict[int, str]] = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}

# (file name, transport) in the order they are read.
TABLES: Final[tuple[tuple[str, str], ...]] = (
    ("tcp", "tcp"),
    ("tcp6", "tcp"),
    ("udp", "udp"),
    ("udp6", "udp"),
)


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """One row of a socket table. IPv4-mapped IPv6 addresses are given in dotted IPv4 form."""

    transport: str  # "tcp" | "udp"
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str  # kernel TCP state name; UDP uses the same table (CLOSE = unconnected)
    uid: int
    inode: int


class ParseError(ValueError):
    """A line that is not a socket row; `reason` is a short stable code for health.unparsed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=4096)  # a host talks to few distinct addresses; decoding is slow
def decode_address(text: str, byteorder: ByteOrder = sys.byteorder) -> str:
    """`0100007F` -> "127.0.0.1"; 32 hex digits -> an IPv6 address (IPv4-mapped -> IPv4)."""
    if len(text) == 8:
        return str(ipaddress.IPv4Address(int(text, 16).to_bytes(4, byteorder)))
    if len(text) == 32:
        raw = b"".join(int(text[i : i + 8], 16).to_bytes(4, byteorder) for i in range(0, 32, 8))
        v6 = ipaddress.IPv6Address(raw)
        mapped = v6.ipv4_mapped
        return str(mapped) if mapped is not None else str(v6)
    raise ParseError("bad_address")


def _endpoint(text: str, byteorder: ByteOrder) -> tuple[str, int]:
    addr, sep, port = text.partition(":")
    if not sep:
        raise ParseError("bad_address")
    try:
        return decode_address(addr, byteorder), int(port, 16)
    except ValueError:
        raise ParseError("bad_address") from None


def parse_line(
    line: str,
    transport: str,
    byteorder: ByteOrder = sys.byteorder,
    wanted: Collection[str] | None = None,
) -> SocketEntry | None:
    """Parse one row; None when its state is not in `wanted` (checked first, to skip the
    address decoding of e.g. TIME_WAIT rows); ParseError with a reason when it is no row."""
    parts = line.split()
    if len(parts) < 10 or not parts[0].endswith(":"):
        raise ParseError("short_line")
    try:
        state = TCP_STATES[int(parts[3], 16)]
    except (ValueError, KeyError):
        raise ParseError("bad_state") from None
    if wanted is not None and state not in wanted:
        return None
    local_ip, local_port = _endpoint(parts[1], byteorder)
    remote_ip, remote_port = _endpoint(parts[2], byteorder)
    try:
        uid = int(parts[7])
        inode = int(parts[9])
    except ValueError:
        raise ParseError("bad_number") from None
    return SocketEntry(transport, local_ip, local_port, remote_ip, remote_port, state, uid, inode)


def parse_table(
    text: str,
    transport: str,
    byteorder: ByteOrder = sys.byteorder,
    wanted: Collection[str] | None = None,
) -> Iterator[SocketEntry | ParseError]:
    """Every row of one table file's text (header skipped) in a `wanted` state, or the error
    a line gave."""
    lines = iter(text.splitlines())
    next(lines, None)  # header
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = parse_line(line, transport, byteorder, wanted)
        except ParseError as exc:
            yield exc
        else:
            if entry is not None:
                yield entry


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def is_unspecified(ip: str) -> bool:
    return ip in ("0.0.0.0", "::")  # noqa: S104  # compared, never bound
