"""The sock_diag reader: the same table as procfs on this machine's kernel, and bad replies."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sources.sockets import SocketConfig, SocketSource
from agent.sources.sockets import diag as diagmod
from agent.sources.sockets.diag import SockDiag
from agent.sources.sockets.procnet import TABLES, ParseError, SocketEntry, parse_table
from agent.sources.sockets.tracker import WANTED_STATES
from tests.agent.sources.sockets.test_socket_source import ctx, mine


def procfs_entries() -> list[SocketEntry]:
    out: list[SocketEntry] = []
    for name, transport in TABLES:
        try:
            text = Path(f"/proc/net/{name}").read_text(encoding="ascii")
        except FileNotFoundError:  # IPv6 disabled
            continue
        out += [
            row
            for row in parse_table(text, transport, wanted=WANTED_STATES[transport])
            if not isinstance(row, ParseError)
        ]
    return out


def netlink_entries() -> list[SocketEntry]:
    reader = SockDiag()
    try:
        return [e for t, wanted in WANTED_STATES.items() for e in reader.read(t, wanted)]
    finally:
        reader.close()


@pytest.fixture
def own_sockets() -> Iterator[set[int]]:
    """A TCP listener and a connection to it on IPv4 and IPv6, and bound UDP sockets: their
    inodes (a socket's inode is what identifies it in both readers)."""
    opened: list[socket.socket] = []
    try:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            listener = socket.socket(family, socket.SOCK_STREAM)
            opened.append(listener)
            listener.bind((host, 0))
            listener.listen(4)
            client = socket.create_connection(listener.getsockname()[:2])
            opened.append(client)
            udp = socket.socket(family, socket.SOCK_DGRAM)
            opened.append(udp)
            udp.bind((host, 0))
        dual = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)  # an IPv4-mapped peer
        opened.append(dual)
        dual.bind(("::", 0))
        dual.listen(1)
        mapped = socket.create_connection(("127.0.0.1", dual.getsockname()[1]))
        opened.append(mapped)
        yield {os_inode(s) for s in opened}
    finally:
        for s in opened:
            s.close()


def os_inode(s: socket.socket) -> int:
    return os.stat(f"/proc/self/fd/{s.fileno()}").st_ino


def test_netlink_and_procfs_read_the_same_sockets(own_sockets: set[int]) -> None:
    by_netlink = {e.inode: e for e in netlink_entries() if e.inode in own_sockets}
    by_procfs = {e.inode: e for e in procfs_entries() if e.inode in own_sockets}
    # Every socket of the fixture appears, with the same fields, in both (the server ends of
    # the connections are never accepted: they have no file, hence inode 0, and are left out).
    assert len(by_netlink) == len(own_sockets)
    assert by_netlink == by_procfs
    states = sorted((e.transport, e.state) for e in by_netlink.values())
    assert states.count(("tcp", "LISTEN")) == 3
    assert states.count(("tcp", "ESTABLISHED")) == 3
    assert states.count(("udp", "CLOSE")) == 2
    # The IPv4 client of the dual-stack listener is an IPv4 socket; the listener's address is
    # "::" as in procfs.
    assert any(e.local_ip == "::" and e.state == "LISTEN" for e in by_netlink.values())


def test_the_source_reads_through_netlink_on_the_real_host() -> None:
    src = SocketSource(SocketConfig(include_loopback=True))
    assert src.health.mode == "sock_diag"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        (event,) = mine(src.poll(ctx()), port)
    assert (event.action, event.socket.local_port) == ("listen", port)
    assert src.health.mode == "sock_diag"
    assert src.health.state == "running"


def test_a_kernel_refusing_netlink_falls_back_to_procfs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> socket.socket:
        raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")

    src = SocketSource(SocketConfig(include_loopback=True))
    monkeypatch.setattr(src._diag, "_opener", refuse)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        (event,) = mine(src.poll(ctx()), port)
    assert event.action == "listen"
    assert src.health.mode == "procfs-poll"
    assert "sock_diag refused (Protocol not supported)" in src.health.detail


class Replies:
    """A netlink socket stand-in that returns canned datagrams (the kernel cannot be made to
    send malformed replies)."""

    def __init__(self, *datagrams: bytes) -> None:
        self.datagrams = list(datagrams)
        self.closed = False

    def send(self, data: bytes) -> int:
        return len(data)

    def recv(self, size: int) -> bytes:
        return self.datagrams.pop(0) if self.datagrams else b""

    def close(self) -> None:
        self.closed = True


def message(kind: int, body: bytes, seq: int = 1) -> bytes:
    length = 16 + len(body)
    padded = body + b"\0" * (-length % 4)
    return struct.pack("=IHHII", length, kind, 0, seq, 0) + padded


def record(state: int = 10, port: int = 22, inode: int = 77) -> bytes:
    src = socket.inet_pton(socket.AF_INET, "10.0.0.5") + b"\0" * 12
    return (
        struct.pack("=BBBB", socket.AF_INET, state, 0, 0)
        + struct.pack(">HH", port, 0)
        + src
        + b"\0" * 16
        + struct.pack("=I8xIIIII", 0, 0, 0, 0, 1000, inode)
    )


def reader_with(monkeypatch: pytest.MonkeyPatch, *datagrams: bytes) -> tuple[SockDiag, Replies]:
    fake = Replies(*datagrams)
    monkeypatch.setattr(diagmod, "_FAMILIES", (socket.AF_INET,))
    return SockDiag(opener=lambda: fake), fake


def test_records_are_decoded_and_stale_replies_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    reader, _ = reader_with(
        monkeypatch,
        message(20, record(port=9999), seq=0) + message(20, record()),  # seq 0: an old dump's
        message(3, b"\0\0\0\0"),
    )
    (entry,) = reader.read("tcp", {"LISTEN"})
    assert entry == SocketEntry("tcp", "10.0.0.5", 22, "0.0.0.0", 0, "LISTEN", 1000, 77)


@pytest.mark.parametrize(
    ("datagrams", "match"),
    [
        ((message(2, struct.pack("=i", -errno.EPERM)),), "EPERM"),
        ((message(20, record())[:30],), "truncated"),
        ((struct.pack("=IHHII", 8, 20, 0, 1, 0),), "truncated"),  # a length below the header
        ((message(20, record()),), "returned nothing"),  # the socket ended mid-dump
    ],
)
def test_bad_replies_raise_and_close_the_socket(
    monkeypatch: pytest.MonkeyPatch, datagrams: tuple[bytes, ...], match: str
) -> None:
    reader, fake = reader_with(monkeypatch, *datagrams)
    with pytest.raises(OSError, match=match):
        reader.read("tcp", {"LISTEN"})
    assert fake.closed
