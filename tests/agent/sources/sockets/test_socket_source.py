"""SocketSource on fixture /proc trees and against this machine's real sockets."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.sources.base import SourceContext
from agent.sources.sockets import SocketConfig, SocketSource
from canhgac.errors import SourceUnavailableError
from canhgac.fields import event_fields
from canhgac.strictmodel import ValidationError
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CLOCK_NS, CollectingSink, wait_until

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)
STATES = {"ESTABLISHED": 1, "SYN_SENT": 2, "TIME_WAIT": 6, "CLOSE": 7, "LISTEN": 10}


def ctx() -> SourceContext:
    return SourceContext(agent_id="agent-1", host="web1", clock_ns=lambda: CLOCK_NS)


def kernel_hex(ip: str) -> str:
    """The address as the kernel prints it on a little-endian host."""
    packed = ipaddress.ip_address(ip).packed
    return "".join(
        f"{int.from_bytes(packed[i : i + 4], 'little'):08X}" for i in range(0, len(packed), 4)
    )


@dataclass
class Row:
    local: str
    lport: int
    remote: str
    rport: int
    state: str
    inode: int
    uid: int = 0

    def render(self, n: int) -> str:
        return (
            f"{n:4d}: {kernel_hex(self.local)}:{self.lport:04X} {kernel_hex(self.remote)}:"
            f"{self.rport:04X} {STATES[self.state]:02X} 00000000:00000000 00:00000000 00000000"
            f" {self.uid:5d}        0 {self.inode} 1 0000000000000000 100 0 0 10 0"
        )


class FakeProc:
    """A /proc tree: net/{tcp,tcp6,udp,udp6} and /<pid>/{fd/*,exe,comm}."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "net").mkdir(parents=True)
        self.tables: dict[str, list[Row]] = {"tcp": [], "tcp6": [], "udp": [], "udp6": []}
        self.write()

    def write(self) -> None:
        for name, rows in self.tables.items():
            body = "".join(r.render(i) + "\n" for i, r in enumerate(rows))
            (self.root / "net" / name).write_text(HEADER + body)

    def set(self, name: str, *rows: Row) -> None:
        self.tables[name] = list(rows)
        self.write()

    def process(self, pid: int, exe: str, comm: str, *inodes: int) -> None:
        d = self.root / str(pid)
        (d / "fd").mkdir(parents=True, exist_ok=True)
        (d / "fd" / "0").symlink_to("/dev/null")
        for n, inode in enumerate(inodes, start=3):
            (d / "fd" / str(n)).symlink_to(f"socket:[{inode}]")
        (d / "exe").symlink_to(exe)
        (d / "comm").write_text(comm + "\n")


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104::/var/lib/postgresql:/bin/bash\n"
    )
    return FakeProc(tmp_path / "proc")


def source(proc: FakeProc, **cfg: object) -> SocketSource:
    return SocketSource(
        SocketConfig.model_validate(cfg),
        proc_root=proc.root,
        etc_root=proc.root.parent / "etc",
        byteorder="little",
    )


def summary(events: list[events_pb2.Event]) -> list[tuple[str, str, str, int, str, int]]:
    return [
        (
            e.action,
            e.socket.direction,
            e.socket.local_ip,
            e.socket.local_port,
            e.socket.remote_ip,
            e.socket.remote_port,
        )
        for e in events
    ]


SSHD = Row("0.0.0.0", 22, "0.0.0.0", 0, "LISTEN", 1001)
PG_LOCAL = Row("127.0.0.1", 5432, "0.0.0.0", 0, "LISTEN", 1002, uid=101)
OUT = Row("192.0.2.2", 40000, "198.51.100.7", 443, "ESTABLISHED", 2001, uid=101)
IN = Row("192.0.2.2", 22, "203.0.113.9", 51000, "ESTABLISHED", 2002)
TIME_WAIT = Row("192.0.2.2", 40001, "198.51.100.7", 443, "TIME_WAIT", 0)


def test_first_poll_reports_baseline_with_owner(proc: FakeProc) -> None:
    proc.set("tcp", SSHD, PG_LOCAL, OUT, IN, TIME_WAIT)
    proc.set("tcp6", Row("::", 80, "::", 0, "LISTEN", 1003))
    proc.process(1, "/usr/lib/systemd/systemd", "systemd")
    proc.process(600, "/usr/sbin/sshd", "sshd", 1001, 2002)
    proc.process(900, "/usr/bin/curl", "curl", 2001)
    src = source(proc)
    events = src.poll(ctx())
    assert summary(events) == [
        ("listen", "listen", "0.0.0.0", 22, "", 0),
        ("listen", "listen", "::", 80, "", 0),
        ("connection_opened", "outbound", "192.0.2.2", 40000, "198.51.100.7", 443),
    ]
    listen, anon, out = events
    assert (listen.category, listen.type, listen.source, listen.host) == (
        "network",
        "start",
        "sockets",
        "web1",
    )
    assert (listen.socket.pid, listen.socket.process_executable) == (600, "/usr/sbin/sshd")
    assert (listen.socket.process_name, listen.socket.user, listen.socket.state) == (
        "sshd",
        "root",
        "LISTEN",
    )
    assert anon.socket.pid == 0
    assert anon.socket.process_executable == ""
    assert (out.type, out.socket.transport, out.socket.state) == (
        "connection",
        "tcp",
        "ESTABLISHED",
    )
    assert (out.socket.pid, out.socket.process_name, out.socket.user) == (900, "curl", "postgres")
    assert out.time_ns == CLOCK_NS
    assert out.created_ns == CLOCK_NS
    assert len(out.id) == 26
    fields = event_fields(out)
    assert fields["destination.ip"] == "198.51.100.7"
    assert fields["destination.port"] == 443
    assert fields["process.executable"] == "/usr/bin/curl"
    assert event_fields(listen)["destination.port"] == 22
    assert src.owners.walks == 1
    assert src.health.state == "running"
    assert not src.health.unparsed


def test_changes_only_and_lazy_fd_walk(proc: FakeProc) -> None:
    proc.set("tcp", SSHD, OUT)
    proc.process(600, "/usr/sbin/sshd", "sshd", 1001)
    proc.process(900, "/usr/bin/curl", "curl", 2001, 2003)
    src = source(proc)
    assert len(src.poll(ctx())) == 2
    assert src.poll(ctx()) == []
    assert src.poll(ctx()) == []
    assert src.owners.walks == 1  # nothing new: /proc/<pid>/fd not read again

    syn = Row("192.0.2.2", 40002, "198.51.100.8", 22, "SYN_SENT", 2003)
    proc.set("tcp", SSHD, OUT, syn)
    (new,) = src.poll(ctx())
    assert (new.action, new.socket.state, new.socket.pid) == ("connection_opened", "SYN_SENT", 900)
    assert new.outcome == events_pb2.OUTCOME_UNKNOWN
    assert src.owners.walks == 2
    # The handshake completes: same 4-tuple and inode, so no second event.
    proc.set("tcp", SSHD, OUT, Row("192.0.2.2", 40002, "198.51.100.8", 22, "ESTABLISHED", 2003))
    assert src.poll(ctx()) == []

    proc.set("tcp", OUT)
    (closed,) = src.poll(ctx())
    assert (closed.action, closed.type, closed.socket.local_port) == ("listen_closed", "end", 22)
    assert closed.socket.pid == 600  # from the cache: the owner may have exited already
    assert src.owners.walks == 2
    assert len(src.owners) == 1  # only the live connection is remembered


def test_inbound_and_loopback_options(proc: FakeProc) -> None:
    loop_out = Row("127.0.0.1", 41000, "127.0.0.1", 5432, "ESTABLISHED", 2004)
    proc.set("tcp", SSHD, PG_LOCAL, IN, loop_out)
    assert summary(source(proc).poll(ctx())) == [("listen", "listen", "0.0.0.0", 22, "", 0)]
    events = source(proc, report_inbound=True, include_loopback=True).poll(ctx())
    assert summary(events) == [
        ("listen", "listen", "0.0.0.0", 22, "", 0),
        ("listen", "listen", "127.0.0.1", 5432, "", 0),
        ("connection_opened", "inbound", "192.0.2.2", 22, "203.0.113.9", 51000),
        ("connection_opened", "outbound", "127.0.0.1", 41000, "127.0.0.1", 5432),
    ]
    assert event_fields(events[2])["source.ip"] == "203.0.113.9"


def test_udp_bound_sockets_are_listeners(proc: FakeProc) -> None:
    proc.set("udp", Row("0.0.0.0", 68, "0.0.0.0", 0, "CLOSE", 3001))
    proc.set(
        "udp6",
        Row("::", 546, "::", 0, "CLOSE", 3002),
        Row("2001:db8::5", 50000, "2001:db8::53", 53, "ESTABLISHED", 3003),  # connected client
    )
    src = source(proc)
    events = src.poll(ctx())
    assert summary(events) == [
        ("listen", "listen", "0.0.0.0", 68, "", 0),
        ("listen", "listen", "::", 546, "", 0),
    ]
    assert {(e.socket.transport, e.socket.state) for e in events} == {("udp", "UNCONN")}
    proc.set("udp6")
    (closed,) = src.poll(ctx())
    assert (closed.action, closed.socket.transport, closed.socket.local_port) == (
        "listen_closed",
        "udp",
        546,
    )


def test_tracking_limit_is_counted(proc: FakeProc) -> None:
    rows = [Row("192.0.2.2", 1000 + i, "0.0.0.0", 0, "LISTEN", 5000 + i) for i in range(20)]
    proc.set("tcp", *rows)
    src = source(proc, max_tracked=16)
    assert len(src.poll(ctx())) == 16
    assert src.health.unparsed["tracking_limit"] == 4
    assert len(src.tracker) == 16


def test_unparseable_lines_counted(proc: FakeProc) -> None:
    (proc.root / "net" / "tcp").write_text(HEADER + SSHD.render(0) + "\n   1: junk\n")
    src = source(proc)
    assert len(src.poll(ctx())) == 1
    assert src.health.unparsed == {"short_line": 1}


def test_missing_ipv6_tables_are_tolerated(proc: FakeProc) -> None:
    del proc.tables["tcp6"], proc.tables["udp6"]
    (proc.root / "net" / "tcp6").unlink()
    (proc.root / "net" / "udp6").unlink()
    proc.set("tcp", SSHD)
    src = source(proc)
    assert len(src.poll(ctx())) == 1
    assert src.health.state == "running"
    assert "tcp6" in src.health.detail


async def test_unreadable_tables_make_source_unavailable(tmp_path: Path) -> None:
    src = SocketSource(proc_root=tmp_path / "noproc", etc_root=tmp_path)
    with pytest.raises(SourceUnavailableError, match="cannot read any socket table"):
        await src.run(ctx(), CollectingSink(), asyncio.Event())
    assert src.health.state == "unavailable"


def test_config_ranges() -> None:
    assert SocketConfig().poll_interval_ms == 5000
    for bad in ({"poll_interval_ms": 999}, {"poll_interval_ms": 600_001}, {"nope": 1}):
        with pytest.raises(ValidationError):
            SocketConfig.model_validate(bad)


async def test_run_emits_through_the_sink(proc: FakeProc) -> None:
    proc.set("tcp", SSHD, OUT)
    src, sink, stop = source(proc, poll_interval_ms=1000), CollectingSink(), asyncio.Event()
    task = asyncio.create_task(src.run(ctx(), sink, stop))
    await wait_until(lambda: len(sink.events) == 2)
    proc.set("tcp", OUT)
    await wait_until(lambda: len(sink.events) == 3)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert sink.events[-1].action == "listen_closed"
    assert src.health.events == 3


# --- the real kernel -------------------------------------------------------------------------


def mine(events: list[events_pb2.Event], port: int) -> list[events_pb2.Event]:
    return [e for e in events if port in (e.socket.local_port, e.socket.remote_port)]


def test_real_listener_connection_and_close() -> None:
    src = SocketSource(SocketConfig(include_loopback=True))
    own_exe = os.readlink(f"/proc/{os.getpid()}/exe")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        (listen,) = mine(src.poll(ctx()), port)
        assert (listen.action, listen.socket.local_ip, listen.socket.local_port) == (
            "listen",
            "127.0.0.1",
            port,
        )
        assert listen.socket.pid == os.getpid()
        assert listen.socket.process_executable == own_exe
        with socket.create_connection(("127.0.0.1", port)) as client:
            client_port = client.getsockname()[1]
            seen: list[events_pb2.Event] = []
            for _ in range(4):
                seen += mine(src.poll(ctx()), port)
            (conn,) = seen  # the accepted side is inbound and not reported by default
            assert (conn.action, conn.socket.direction) == ("connection_opened", "outbound")
            assert (conn.socket.local_port, conn.socket.remote_port) == (client_port, port)
            assert conn.socket.pid == os.getpid()
    closed = mine(src.poll(ctx()), port)
    assert [e.action for e in closed] == ["listen_closed"]
    assert closed[0].socket.pid == os.getpid()
