"""Fast header decoding: a `Frame` -> `PacketInfo`, or `DecodeError(reason)`.

Reads only fixed offsets with `struct` (full scapy dissection manages about 12k packets/s):
link header (Ethernet with 802.1Q/802.1ad tags, Linux SLL and SLL2, raw IP), IPv4 (options,
fragments) or IPv6 (common extension headers), then TCP, UDP, ICMP or ICMPv6. A non-first
fragment has no L4 header: it is returned with `fragment=True` and no ports, not as an error.
Only DNS (port 53) keeps its L4 payload, for dns.py.
"""

from __future__ import annotations

import socket
import struct
from typing import Final

from agent.netsensor.packet import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    DecodeError,
    Frame,
    PacketInfo,
)

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
_VLAN_TAGS: Final = frozenset({0x8100, 0x88A8, 0x9100})
# IPv6 extension headers sized in 8-octet units after the first 8 (hop-by-hop, routing,
# destination options, mobility, HIP, shim6); fragment (44) and AH (51) are handled apart.
_IPV6_EXT: Final = frozenset({0, 43, 60, 135, 139, 140})
_MAX_IPV6_EXT: Final = 8
DNS_PORT: Final = 53
ICMP_UNREACHABLE: Final = 3
ICMPV6_UNREACHABLE: Final = 1

_U16 = struct.Struct("!H")
_PORTS = struct.Struct("!HH")
_TCP = struct.Struct("!HH8xB")  # sport, dport, data offset byte; flags follow at +13

# Addresses repeat heavily (a host talks to few peers), and inet_ntop is a measurable share of
# the per-packet cost; a small dict, cleared when full, keeps the hot ones.
_ADDR_CACHE: dict[bytes, str] = {}
_ADDR_CACHE_MAX: Final = 4096


def _addr(raw: bytes) -> str:
    text = _ADDR_CACHE.get(raw)
    if text is None:
        if len(_ADDR_CACHE) >= _ADDR_CACHE_MAX:
            _ADDR_CACHE.clear()
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        text = _ADDR_CACHE[raw] = socket.inet_ntop(family, raw)
    return text


def decode(frame: Frame) -> PacketInfo:
    """Read `frame`'s headers; raises DecodeError with a bounded reason."""
    try:
        return _decode(frame)
    except (IndexError, struct.error, ValueError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError("malformed") from exc


def _decode(frame: Frame) -> PacketInfo:
    data = frame.data
    linktype = frame.linktype
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            raise DecodeError("truncated_ethernet")
        ethertype = (data[12] << 8) | data[13]
        off = 14
    elif linktype == LINKTYPE_RAW:
        if not data:
            raise DecodeError("truncated_ip")
        version = data[0] >> 4
        ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0
        off = 0
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            raise DecodeError("truncated_sll")
        ethertype = (data[14] << 8) | data[15]
        off = 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            raise DecodeError("truncated_sll")
        ethertype = (data[0] << 8) | data[1]
        off = 20
    else:
        raise DecodeError("unsupported_linktype")
    while ethertype in _VLAN_TAGS:
        if len(data) < off + 4:
            raise DecodeError("truncated_ethernet")
        ethertype = (data[off + 2] << 8) | data[off + 3]
        off += 4
    if ethertype == ETHERTYPE_IPV4:
        return _ipv4(data, off, frame.time_ns)
    if ethertype == ETHERTYPE_IPV6:
        return _ipv6(data, off, frame.time_ns)
    raise DecodeError("not_ip")


def _ipv4(data: bytes, off: int, time_ns: int) -> PacketInfo:
    if len(data) < off + 20:
        raise DecodeError("truncated_ip")
    first = data[off]
    ihl = (first & 0x0F) * 4
    if first >> 4 != 4 or ihl < 20:
        raise DecodeError("bad_ip_header")
    total = (data[off + 2] << 8) | data[off + 3]
    if total < ihl:
        raise DecodeError("bad_ip_header")
    if len(data) < off + ihl:
        raise DecodeError("truncated_ip")
    info = PacketInfo(
        time_ns,
        4,
        _addr(data[off + 12 : off + 16]),
        _addr(data[off + 16 : off + 20]),
        data[off + 9],
        length=total,
    )
    if ((data[off + 6] << 8) | data[off + 7]) & 0x1FFF:
        info.fragment = True
        return info
    end = off + total
    if end > len(data):
        end = len(data)  # cut by the snaplen: read what is there
    _l4(info, data, off + ihl, end)
    return info


def _ipv6(data: bytes, off: int, time_ns: int) -> PacketInfo:
    if len(data) < off + 40:
        raise DecodeError("truncated_ip")
    if data[off] >> 4 != 6:
        raise DecodeError("bad_ip_header")
    payload_len = (data[off + 4] << 8) | data[off + 5]
    info = PacketInfo(
        time_ns,
        6,
        _addr(data[off + 8 : off + 24]),
        _addr(data[off + 24 : off + 40]),
        data[off + 6],
        length=40 + payload_len,
    )
    end = min(off + 40 + payload_len, len(data))
    l4, proto, fragment = _skip_ipv6_ext(data, off + 40, end, info.proto)
    info.proto = proto
    if fragment:
        info.fragment = True
        return info
    _l4(info, data, l4, end)
    return info


def _skip_ipv6_ext(data: bytes, off: int, end: int, proto: int) -> tuple[int, int, bool]:
    """The offset and protocol of the L4 header after IPv6 extension headers, and whether
    the packet is a non-first fragment."""
    for _ in range(_MAX_IPV6_EXT):
        if proto in _IPV6_EXT:
            if end < off + 8:
                raise DecodeError("truncated_ip")
            proto, off = data[off], off + (data[off + 1] + 1) * 8
        elif proto == 44:  # fragment header
            if end < off + 8:
                raise DecodeError("truncated_ip")
            if _U16.unpack_from(data, off + 2)[0] >> 3:
                return off + 8, data[off], True
            proto, off = data[off], off + 8
        elif proto == 51:  # AH: length in 4-octet units, minus 2
            if end < off + 8:
                raise DecodeError("truncated_ip")
            proto, off = data[off], off + (data[off + 1] + 2) * 4
        else:
            return off, proto, False
    raise DecodeError("bad_ip_header")


def _l4(info: PacketInfo, data: bytes, off: int, end: int) -> None:
    proto = info.proto
    if proto == IPPROTO_TCP:
        if end < off + 20:
            raise DecodeError("truncated_tcp")
        sport, dport, doff = _TCP.unpack_from(data, off)
        info.sport = sport
        info.dport = dport
        info.tcp_flags = data[off + 13]
        if sport == DNS_PORT or dport == DNS_PORT:
            hlen = (doff >> 4) * 4
            if hlen < 20:
                raise DecodeError("bad_tcp_header")
            info.payload = data[off + hlen : end]
    elif proto == IPPROTO_UDP:
        if end < off + 8:
            raise DecodeError("truncated_udp")
        sport, dport = _PORTS.unpack_from(data, off)
        info.sport = sport
        info.dport = dport
        if sport == DNS_PORT or dport == DNS_PORT:
            info.payload = data[off + 8 : end]
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if end < off + 2:
            raise DecodeError("truncated_icmp")
        info.icmp_type = data[off]
        info.icmp_code = data[off + 1]
        unreachable = ICMP_UNREACHABLE if proto == IPPROTO_ICMP else ICMPV6_UNREACHABLE
        if info.icmp_type == unreachable:
            _quoted(info, data, off + 8, end)


def _quoted(info: PacketInfo, data: bytes, off: int, end: int) -> None:
    """Fill quoted_* from the original packet an unreachable message quotes (best effort:
    a short quote leaves them empty)."""
    if end < off + 20:
        return
    version = data[off] >> 4
    if version == 4:
        ihl = (data[off] & 0x0F) * 4
        info.quoted_dst = _addr(data[off + 16 : off + 20])
        info.quoted_proto = data[off + 9]
        l4 = off + ihl
    elif version == 6 and end >= off + 40:
        info.quoted_dst = _addr(data[off + 24 : off + 40])
        try:
            l4, info.quoted_proto, fragment = _skip_ipv6_ext(data, off + 40, end, data[off + 6])
        except DecodeError:
            return
        if fragment:
            return
    else:
        return
    if info.quoted_proto in (IPPROTO_TCP, IPPROTO_UDP) and end >= l4 + 4:
        info.quoted_dport = _U16.unpack_from(data, l4 + 2)[0]
