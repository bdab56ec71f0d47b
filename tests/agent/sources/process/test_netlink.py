"""The cn_proc message parser on hand-built byte strings."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from agent.sources.process.netlink import (
    ExitStatus,
    KernelEvent,
    ProcConnector,
    ProcConnectorError,
    control_message,
    decode_wait_status,
    explain_os_error,
    parse_datagram,
)

from . import kernelmsg as km


def test_fork_exec_exit() -> None:
    data = km.fork(10, 11, ts=5) + km.exec_(11, ts=6) + km.exit_(11, 3 << 8, parent=10, ts=7)
    events, problems = parse_datagram(data)
    assert problems == []
    assert events == [
        KernelEvent("fork", 5, 11, 11, parent_pid=10, parent_tgid=10),
        KernelEvent("exec", 6, 11, 11),
        KernelEvent("exit", 7, 11, 11, 10, 10, wait_status=3 << 8, exit_signal=17),
    ]


def test_exit_without_parent_fields_from_older_kernels() -> None:
    (event,), _ = parse_datagram(km.exit_(20, 0, parent=None))
    assert (event.kind, event.pid, event.parent_tgid, event.wait_status) == ("exit", 20, 0, 0)


def test_thread_events_are_marked() -> None:
    events, _ = parse_datagram(km.fork(10, 10, child_pid=12) + km.exit_(12, 0, tgid=10))
    assert [e.is_thread for e in events] == [True, True]


def test_other_event_kinds_and_connectors_are_skipped() -> None:
    data = km.message(km.PROC_EVENT_UID, struct.pack("=IIII", 1, 1, 0, 0)) + km.message(
        km.PROC_EVENT_EXEC, struct.pack("=II", 1, 1), idx=7
    )
    assert parse_datagram(data) == ([], [])


def test_ack_carries_the_error() -> None:
    (event,), _ = parse_datagram(km.ack(43, err=1))
    assert (event.kind, event.ack, event.error) == ("ack", 43, 1)


def test_overrun_message_is_counted() -> None:
    overrun = struct.pack("=IHHII", 16, 4, 0, 0, 0)
    events, problems = parse_datagram(overrun + km.exec_(5))
    assert problems == ["netlink_overrun"]
    assert [e.kind for e in events] == ["exec"]


@pytest.mark.parametrize(
    "data",
    [
        km.exec_(5)[:-12],  # cut inside the message
        struct.pack("=IHHII", 8, 3, 0, 0, 0),  # length shorter than a header
        km.message(km.PROC_EVENT_EXEC, b"\1\0"),  # union too short
        km.exec_(5) + b"\1\2\3",  # trailing bytes
    ],
)
def test_malformed_is_counted(data: bytes) -> None:
    _, problems = parse_datagram(data)
    assert problems == ["netlink_malformed"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, ExitStatus(0)),
        (3 << 8, ExitStatus(3)),
        (255 << 8, ExitStatus(255)),
        (9, ExitStatus(-9, signal=9)),
        (11 | 0x80, ExitStatus(-11, signal=11, core_dumped=True)),
    ],
)
def test_wait_status(status: int, expected: ExitStatus) -> None:
    assert decode_wait_status(status) == expected


def test_listen_request_layout() -> None:
    msg = control_message(1, seq=5, ack=6)
    assert len(msg) == 16 + 20 + 4
    assert struct.unpack_from("=IHHII", msg) == (40, 3, 0, 5, 0)
    assert struct.unpack_from("=IIIIHH", msg, 16) == (1, 1, 5, 6, 4, 0)
    assert struct.unpack_from("=I", msg, 36) == (1,)


def test_subscription_ack_with_an_error_is_refused() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        kernel.send(km.exec_(5))  # an event before the ack is kept
        kernel.send(km.ack(100, err=0))  # someone else's subscription
        kernel.send(km.ack(43, err=errno.EPERM))
        connector = ProcConnector(ack_timeout=5)
        with pytest.raises(OSError, match="not permitted") as caught:
            connector._await_ack(ours, 42)
        assert caught.value.errno == errno.EPERM
        assert connector.early == [km.exec_(5), km.ack(100)]
        assert "permission denied" in explain_os_error(caught.value)


def test_no_ack_means_no_process_events_here() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        kernel.send(km.ack(7))
        connector = ProcConnector(ack_timeout=0.2)
        with pytest.raises(ProcConnectorError, match="container"):
            connector._await_ack(ours, 42)


def test_subscription_ack_accepted() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        kernel.send(km.ack(43))
        ProcConnector(ack_timeout=5)._await_ack(ours, 42)
