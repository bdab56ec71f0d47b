"""The kernel's socket tables through netlink (NETLINK_SOCK_DIAG), as `ss` reads them.

Reading /proc/net/tcp, tcp6, udp and udp6 makes the kernel walk its whole socket hash tables
and format every row as text: about 10 ms of (kernel) CPU per poll on a host with a few dozen
sockets, 0.2% of a core at the default 5 s interval, more on a busy server. A sock_diag dump
asks for the wanted states only and returns fixed binary records (linux/inet_diag.h), about
ten times cheaper. The records carry what the procfs rows carry (addresses, ports, state, uid,
inode), so the rest of the source is the same whichever way the table was read.

A kernel without sock_diag for a family (a module not loaded, IPv6 disabled) or a sandbox that
forbids netlink gives OSError; the source then reads procfs.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Collection, Iterator
from typing import Final, Protocol

from .procnet import TCP_STATES, SocketEntry

NETLINK_SOCK_DIAG: Final = 4
SOCK_DIAG_BY_FAMILY: Final = 20
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x01
NLM_F_DUMP: Final = 0x300

# struct nlmsghdr: len, type, flags, seq, pid.
_NLMSGHDR: Final = struct.Struct("=IHHII")
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then struct inet_diag_sockid
# (zeroed: no filter on addresses).
_REQUEST: Final = struct.Struct("=BBBxI48x")
# struct inet_diag_msg: family, state, timer, retrans; inet_diag_sockid: sport and dport
# (big-endian), src and dst (16 bytes each, network order), interface, cookie; then expires,
# rqueue, wqueue, uid, inode.
_MESSAGE: Final = struct.Struct("=BBBB2H16s16sI8xIIIII")
_PORTS: Final = struct.Struct(">HH")

_STATE_NUMBERS: Final = {name: number for number, name in TCP_STATES.items()}
_PROTOCOLS: Final = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)
_RECV_BYTES: Final = 65536
# A dump of a table in a state it cannot be in stops long before this; the bound is there so a
# misbehaving kernel cannot keep the poll reading for ever.
MAX_RECORDS: Final = 1_048_576


class NetlinkSocket(Protocol):
    """What SockDiag uses of its socket (tests hand it canned replies through `opener`)."""

    def send(self, data: bytes, /) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def close(self) -> None: ...


def open_sock_diag() -> NetlinkSocket:
    """A bound NETLINK_SOCK_DIAG socket; OSError where the kernel or a sandbox refuses."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


class SockDiag:
    """One netlink socket, reused for every dump (opened lazily, closed with `close`)."""

    def __init__(self, opener: Callable[[], NetlinkSocket] = open_sock_diag) -> None:
        self._opener = opener
        self._sock: NetlinkSocket | None = None
        self._seq = 0
        self._address_cache: dict[tuple[int, bytes], str] = {}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def read(self, transport: str, wanted: Collection[str]) -> list[SocketEntry]:
        """The sockets of `transport` ("tcp" or "udp") in the `wanted` states, IPv4 and IPv6.

        Raises OSError when the kernel refuses (no sock_diag support, no netlink here)."""
        states = 0
        for name in wanted:
            states |= 1 << _STATE_NUMBERS[name]
        entries: list[SocketEntry] = []
        for family in _FAMILIES:
            try:
                entries.extend(self._dump(family, _PROTOCOLS[transport], states, transport))
            except OSError as exc:
                # No inet6_diag (IPv6 disabled or its module absent): IPv4 alone is still the
                # table, as a missing /proc/net/tcp6 is for the procfs reader.
                if family == socket.AF_INET6 and exc.errno in (errno.ENOENT, errno.EAFNOSUPPORT):
                    continue
                raise
        return entries

    def _socket(self) -> NetlinkSocket:
        if self._sock is None:
            self._sock = self._opener()
        return self._sock

    def _dump(
        self, family: int, protocol: int, states: int, transport: str
    ) -> Iterator[SocketEntry]:
        sock = self._socket()
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        body = _REQUEST.pack(family, protocol, 0, states)
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
        )
        finished = False
        try:
            sock.send(header + body)
            yield from self._replies(sock, seq, transport)
            finished = True
        finally:
            if not finished:
                # A dump abandoned half-way (an error, or its reader stopped) leaves its
                # remaining replies queued on the socket, where the next dump would read them:
                # start the next one on a fresh socket.
                self.close()

    def _replies(self, sock: NetlinkSocket, seq: int, transport: str) -> Iterator[SocketEntry]:
        records = 0
        while True:
            data = sock.recv(_RECV_BYTES)
            if not data:
                raise OSError(errno.EIO, "sock_diag: the netlink socket returned nothing")
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _, msg_seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size or offset + length > len(data):
                    raise OSError(errno.EIO, "sock_diag: a truncated netlink message")
                start = offset + _NLMSGHDR.size
                offset += (length + 3) & ~3  # NLMSG_ALIGN
                if msg_seq != seq:
                    continue  # a late reply to an earlier request
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, start)
                    if code == 0:
                        continue  # an acknowledgement
                    raise OSError(-code, f"sock_diag: {errno.errorcode.get(-code, -code)}")
                if kind != SOCK_DIAG_BY_FAMILY or length - _NLMSGHDR.size < _MESSAGE.size:
                    continue
                records += 1
                if records > MAX_RECORDS:
                    raise OSError(errno.E2BIG, f"sock_diag: more than {MAX_RECORDS} sockets")
                yield self._entry(data, start, transport)

    def _entry(self, data: bytes, start: int, transport: str) -> SocketEntry:
        family, state, _, _, _, _, src, dst, _, _, _, _, uid, inode = _MESSAGE.unpack_from(
            data, start
        )
        sport, dport = _PORTS.unpack_from(data, start + 4)
        return SocketEntry(
            transport,
            self._address(family, src),
            sport,
            self._address(family, dst),
            dport,
            TCP_STATES.get(state, "CLOSE"),
            uid,
            inode,
        )

    def _address(self, family: int, raw: bytes) -> str:
        """Text of an address as the procfs reader gives it (IPv4-mapped IPv6 as IPv4)."""
        key = (family, raw)
        text = self._address_cache.get(key)
        if text is None:
            if family == socket.AF_INET:
                text = str(ipaddress.IPv4Address(raw[:4]))
            else:
                v6 = ipaddress.IPv6Address(raw)
                mapped = v6.ipv4_mapped
                text = str(mapped) if mapped is not None else str(v6)
            if len(self._address_cache) >= 4096:  # a host talks to few distinct addresses
                self._address_cache.clear()
            self._address_cache[key] = text
        return text
