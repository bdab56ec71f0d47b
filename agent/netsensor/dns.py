"""DNS messages (RFC 1035) dissected from a UDP or TCP port-53 payload.

`parse_dns()` returns a `DnsMessage` or raises `DnsParseError(reason)` with a bounded reason;
it never raises anything else. Names follow compression pointers (only backwards, at most
`MAX_POINTERS` of them: no loops). Answer data is rendered as text the way dig shows it; a type
without a renderer is `TYPE<n>` with its data in RFC 3597 form (`\\# <len> <hex>`). Over TCP
the message must be whole in one segment (no stream reassembly: `tcp_incomplete` otherwise).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

MAX_POINTERS: Final = 16
MAX_NAME: Final = 255
MAX_ANSWERS: Final = 64
MAX_TEXT: Final = 1024  # rendered answer data longer than this is cut

TYPE_NAMES: Final[dict[int, str]] = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    10: "NULL",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    17: "RP",
    28: "AAAA",
    29: "LOC",
    33: "SRV",
    35: "NAPTR",
    39: "DNAME",
    41: "OPT",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    50: "NSEC3",
    52: "TLSA",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    250: "TSIG",
    251: "IXFR",
    252: "AXFR",
    255: "ANY",
    257: "CAA",
}
RCODE_NAMES: Final[dict[int, str]] = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_SOA = struct.Struct("!IIIII")
_SRV = struct.Struct("!HHH")
# Bytes shown as themselves in a label; the rest as \DDD (dig's presentation format).
_PLAIN: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/")


class DnsParseError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    name: str
    type: str
    data: str
    ttl: int


@dataclass(frozen=True, slots=True)
class DnsMessage:
    transaction_id: int
    is_response: bool
    rcode: str  # "" for a query
    query_name: str  # lowercased, no trailing dot
    query_type: str
    answers: tuple[Answer, ...] = field(default=())


def parse_dns(payload: bytes, *, tcp: bool = False) -> DnsMessage:
    """Dissect one DNS message; raises DnsParseError(reason) on malformed input."""
    try:
        return _parse(payload, tcp)
    except DnsParseError:
        raise
    except (IndexError, struct.error, ValueError) as exc:
        raise DnsParseError("malformed") from exc


def _parse(msg: bytes, tcp: bool) -> DnsMessage:
    if tcp:
        if len(msg) < 2:
            raise DnsParseError("tcp_incomplete")
        length = _U16.unpack_from(msg, 0)[0]
        if len(msg) < 2 + length:
            raise DnsParseError("tcp_incomplete")
        msg = msg[2 : 2 + length]
    if len(msg) < 12:
        raise DnsParseError("truncated_header")
    txid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(msg, 0)
    is_response = bool(flags & 0x8000)
    if qdcount == 0:
        raise DnsParseError("no_question")
    name, off = _name(msg, 12)
    if len(msg) < off + 4:
        raise DnsParseError("truncated_question")
    qtype = _U16.unpack_from(msg, off)[0]
    off += 4
    for _ in range(qdcount - 1):  # further questions are rare; skip them
        off = _name(msg, off)[1] + 4
    answers: list[Answer] = []
    if is_response:
        for _ in range(min(ancount, MAX_ANSWERS)):
            answer, off = _answer(msg, off)
            if answer is not None:
                answers.append(answer)
    return DnsMessage(
        transaction_id=txid,
        is_response=is_response,
        rcode=_rcode_name(flags & 0x0F) if is_response else "",
        query_name=name.lower(),
        query_type=type_name(qtype),
        answers=tuple(answers),
    )


def type_name(rtype: int) -> str:
    return TYPE_NAMES.get(rtype) or f"TYPE{rtype}"


def _rcode_name(rcode: int) -> str:
    return RCODE_NAMES.get(rcode) or f"RCODE{rcode}"


def _name(msg: bytes, off: int) -> tuple[str, int]:
    """The name at `off` (no trailing dot) and the offset after it in the message."""
    labels: list[str] = []
    end = -1  # where the name ends in place, once a pointer was followed
    pointers = 0
    size = 0
    while True:
        if off >= len(msg):
            raise DnsParseError("truncated_name")
        length = msg[off]
        if length == 0:
            off += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if off + 1 >= len(msg):
                raise DnsParseError("truncated_name")
            target = ((length & 0x3F) << 8) | msg[off + 1]
            pointers += 1
            # Pointers only go backwards in a well-formed message; with the count limit this
            # stops loops (a pointer to itself or a cycle) cheaply.
            if target >= off or pointers > MAX_POINTERS:
                raise DnsParseError("bad_pointer")
            if end < 0:
                end = off + 2
            off = target
            continue
        if kind:
            raise DnsParseError("bad_label")
        label = msg[off + 1 : off + 1 + length]
        if len(label) < length:
            raise DnsParseError("truncated_name")
        size += length + 1
        if size > MAX_NAME:
            raise DnsParseError("name_too_long")
        labels.append(_label_text(label))
        off += 1 + length
    return ".".join(labels), (end if end >= 0 else off)


def _label_text(label: bytes) -> str:
    if all(b in _PLAIN for b in label):
        return label.decode("ascii")
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in label)


def _answer(msg: bytes, off: int) -> tuple[Answer | None, int]:
    name, off = _name(msg, off)
    if len(msg) < off + 10:
        raise DnsParseError("truncated_answer")
    rtype, _, ttl, rdlength = _RR.unpack_from(msg, off)
    off += 10
    end = off + rdlength
    if len(msg) < end:
        raise DnsParseError("truncated_answer")
    if rtype == 41:  # OPT belongs to the additional section; tolerate it here, skip
        return None, end
    render = _RENDER.get(rtype)
    try:
        data = render(msg, off, end) if render else _generic(msg, off, end)
    except DnsParseError:
        raise
    except (IndexError, struct.error, ValueError, OSError) as exc:
        raise DnsParseError("bad_rdata") from exc
    if len(data) > MAX_TEXT:
        data = data[:MAX_TEXT]
    return Answer(name.lower(), type_name(rtype), data, ttl), end


def _a(msg: bytes, off: int, end: int) -> str:
    if end - off != 4:
        raise DnsParseError("bad_rdata")
    return socket.inet_ntop(socket.AF_INET, msg[off:end])


def _aaaa(msg: bytes, off: int, end: int) -> str:
    if end - off != 16:
        raise DnsParseError("bad_rdata")
    return socket.inet_ntop(socket.AF_INET6, msg[off:end])


def _domain(msg: bytes, off: int, end: int) -> str:
    return _name(msg, off)[0].lower()


def _mx(msg: bytes, off: int, end: int) -> str:
    return f"{_U16.unpack_from(msg, off)[0]} {_name(msg, off + 2)[0].lower()}"


def _txt(msg: bytes, off: int, end: int) -> str:
    # Character-strings are concatenated: long records (DKIM keys, tunnel payloads) are split
    # at 255 bytes only because of the wire format.
    parts: list[str] = []
    while off < end:
        length = msg[off]
        if off + 1 + length > end:
            raise DnsParseError("bad_rdata")
        parts.append(msg[off + 1 : off + 1 + length].decode("utf-8", "backslashreplace"))
        off += 1 + length
    return "".join(parts)


def _srv(msg: bytes, off: int, end: int) -> str:
    priority, weight, port = _SRV.unpack_from(msg, off)
    return f"{priority} {weight} {port} {_name(msg, off + 6)[0].lower()}"


def _soa(msg: bytes, off: int, end: int) -> str:
    mname, off = _name(msg, off)
    rname, off = _name(msg, off)
    serial, refresh, retry, expire, minimum = _SOA.unpack_from(msg, off)
    return f"{mname.lower()} {rname.lower()} {serial} {refresh} {retry} {expire} {minimum}"


def _generic(msg: bytes, off: int, end: int) -> str:
    return f"\\# {end - off} {msg[off:end].hex()}"


_RENDER: Final[dict[int, Callable[[bytes, int, int], str]]] = {
    1: _a,
    2: _domain,
    5: _domain,
    12: _domain,
    15: _mx,
    16: _txt,
    28: _aaaa,
    33: _srv,
    6: _soa,
}
