"""The contract between frame sources (capture, replay) and the sensor core.

A frame source yields `Frame`s; `Sensor.feed()` (sensor.py) takes them one at a time. The
decoder turns a frame into a `PacketInfo` or raises `DecodeError` with a bounded `reason`
(a counter label: `truncated_ethernet`, `truncated_ip`, `bad_ip_header`, `truncated_tcp`,
`unsupported_linktype`, `not_ip` ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# pcap link-layer header types (https://www.tcpdump.org/linktypes.html), the ones we decode.
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101  # a raw IPv4 or IPv6 packet, no link header
LINKTYPE_LINUX_SLL: Final = 113  # Linux "cooked" capture (the `any` interface)
LINKTYPE_LINUX_SLL2: Final = 276

# TCP flag bits, as in the TCP header's flags byte.
FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80

IPPROTO_ICMP: Final = 1
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_ICMPV6: Final = 58


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: its bytes from the link header on, when, and the link type."""

    data: bytes
    time_ns: int
    linktype: int = LINKTYPE_ETHERNET
    # The frame's length on the wire (the capture may have kept fewer bytes: snaplen).
    wire_length: int = 0


@dataclass(slots=True)
class PacketInfo:
    """What the fast path reads from one packet's headers (nothing beyond the L4 header,
    except `payload`, a view of the L4 payload for the packets dissected in depth)."""

    time_ns: int
    ip_version: int  # 4 or 6
    src: str  # textual IP address
    dst: str
    proto: int  # IPPROTO_*
    sport: int = 0  # 0 for protocols without ports
    dport: int = 0
    tcp_flags: int = 0
    length: int = 0  # bytes of the IP packet (on the wire)
    # ICMP / ICMPv6 type and code; for "destination unreachable" the quoted original packet's
    # destination address, protocol and port (so an unreachable reply can be tied to a probe).
    icmp_type: int = -1
    icmp_code: int = -1
    quoted_dst: str = ""
    quoted_proto: int = 0
    quoted_dport: int = 0
    payload: bytes = b""
    # A non-first IPv4/IPv6 fragment: no L4 header, so no ports (counted, not an error).
    fragment: bool = False


class DecodeError(ValueError):
    """A frame the fast path cannot read; `reason` is a bounded counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
