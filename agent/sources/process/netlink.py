"""The kernel's process-events connector (cn_proc): socket set-up and message parsing.

Layout (host byte order), one datagram may hold several netlink messages:
  nlmsghdr  u32 len, u16 type, u16 flags, u32 seq, u32 pid                      16 bytes
  cn_msg    u32 idx, u32 val, u32 seq, u32 ack, u16 len, u16 flags             20 bytes
  proc_event u32 what, u32 cpu, u64 timestamp_ns (CLOCK_MONOTONIC), then a union:
    fork: u32 parent_pid, parent_tgid, child_pid, child_tgid
    exec: u32 process_pid, process_tgid
    exit: u32 process_pid, process_tgid, exit_code (wait status), exit_signal,
          [parent_pid, parent_tgid since Linux 4.18]
    ack (what == 0): u32 err
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Literal

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4

PROC_EVENT_NONE = 0x0
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000

SO_RCVBUFFORCE = 33  # not exported by the socket module
RCVBUF_BYTES = 4 * 1024 * 1024

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_FORK = struct.Struct("=IIII")
_EXEC = struct.Struct("=II")
_EXIT = struct.Struct("=IIII")
_EXIT_PARENT = struct.Struct("=II")
_ACK = struct.Struct("=I")
_OP = struct.Struct("=I")
_HEAD = _NLMSGHDR.size + _CN_MSG.size

Kind = Literal["fork", "exec", "exit", "ack", "other"]


@dataclass(frozen=True)
class KernelEvent:
    """One proc_event. For fork, pid/tgid are the child's and parent_* the parent's."""

    kind: Kind
    timestamp_ns: int = 0
    pid: int = 0
    tgid: int = 0
    parent_pid: int = 0
    parent_tgid: int = 0
    wait_status: int = 0
    exit_signal: int = 0
    ack: int = 0  # cn_msg.ack of an acknowledgement
    error: int = 0  # errno carried by an acknowledgement

    @property
    def is_thread(self) -> bool:
        return self.pid != self.tgid


@dataclass(frozen=True)
class ExitStatus:
    """A decoded wait status: `code` is the exit status, or -signal when killed by one."""

    code: int
    signal: int = 0
    core_dumped: bool = False


def decode_wait_status(status: int) -> ExitStatus:
    """Decode the kernel's task exit_code the way waitpid() callers do."""
    signal = status & 0x7F
    if signal == 0:
        return ExitStatus(code=(status >> 8) & 0xFF)
    return ExitStatus(code=-signal, signal=signal, core_dumped=bool(status & 0x80))


def parse_datagram(data: bytes) -> tuple[list[KernelEvent], list[str]]:
    """Parse every message in one datagram: (events, reasons for what could not be parsed)."""
    events: list[KernelEvent] = []
    problems: list[str] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            problems.append("netlink_malformed")
            break
        message = data[offset : offset + length]
        offset += (length + 3) & ~3  # NLMSG_ALIGN
        if msg_type == NLMSG_OVERRUN:
            problems.append("netlink_overrun")
        elif msg_type == NLMSG_DONE:
            event = parse_connector_message(message)
            if event is None:
                problems.append("netlink_malformed")
            elif event.kind != "other":
                events.append(event)
        # NOOP / ERROR and other netlink types carry no process event.
    if offset < len(data) and not problems:
        problems.append("netlink_malformed")
    return events, problems


def parse_connector_message(message: bytes) -> KernelEvent | None:
    """Parse one netlink message holding a cn_msg; None when it is too short or not cn_proc."""
    if len(message) < _HEAD + _EVENT_HEAD.size:
        return None
    idx, val, _seq, ack, data_len, _flags = _CN_MSG.unpack_from(message, _NLMSGHDR.size)
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
        return KernelEvent(kind="other")
    body = message[_HEAD : _HEAD + data_len]
    if len(body) < _EVENT_HEAD.size:
        return None
    what, _cpu, ts = _EVENT_HEAD.unpack_from(body)
    union = body[_EVENT_HEAD.size :]
    try:
        if what == PROC_EVENT_FORK:
            ppid, ptgid, cpid, ctgid = _FORK.unpack_from(union)
            return KernelEvent("fork", ts, cpid, ctgid, parent_pid=ppid, parent_tgid=ptgid)
        if what == PROC_EVENT_EXEC:
            pid, tgid = _EXEC.unpack_from(union)
            return KernelEvent("exec", ts, pid, tgid)
        if what == PROC_EVENT_EXIT:
            pid, tgid, status, sig = _EXIT.unpack_from(union)
            ppid = ptgid = 0
            if len(union) >= _EXIT.size + _EXIT_PARENT.size:
                ppid, ptgid = _EXIT_PARENT.unpack_from(union, _EXIT.size)
            return KernelEvent(
                "exit", ts, pid, tgid, ppid, ptgid, wait_status=status, exit_signal=sig
            )
        if what == PROC_EVENT_NONE:
            (err,) = _ACK.unpack_from(union)
            return KernelEvent("ack", ts, ack=ack, error=err)
    except struct.error:
        return None
    return KernelEvent(kind="other")


def control_message(op: int, *, seq: int, ack: int) -> bytes:
    """A PROC_CN_MCAST_LISTEN / IGNORE request."""
    payload = _OP.pack(op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, seq, ack, len(payload), 0)
    total = _NLMSGHDR.size + len(cn) + len(payload)
    return _NLMSGHDR.pack(total, NLMSG_DONE, 0, seq, 0) + cn + payload


class ProcConnectorError(Exception):
    """The connector cannot be used; the message says why, for health.detail."""


def explain_os_error(exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "permission denied (needs root / CAP_NET_ADMIN)"
    if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
        return "the kernel has no netlink connector (CONFIG_CONNECTOR / CONFIG_PROC_EVENTS)"
    return os.strerror(exc.errno) if exc.errno else str(exc)


class ProcConnector:
    """A subscribed cn_proc socket. `open()` raises ProcConnectorError with the reason."""

    def __init__(self, *, ack_timeout: float = 2.0) -> None:
        self._ack_timeout = ack_timeout
        self._sock: socket.socket | None = None
        self.early: list[bytes] = []  # datagrams received while waiting for the ack

    def open(self) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as exc:
            raise ProcConnectorError(explain_os_error(exc)) from exc
        try:
            self._set_rcvbuf(sock)
            # pid 0: the kernel picks a unique port id, so other netlink sockets in this
            # process (sock_diag users) cannot clash with it.
            sock.bind((0, CN_IDX_PROC))
            nonce = int.from_bytes(os.urandom(3), "little")
            sock.sendto(control_message(PROC_CN_MCAST_LISTEN, seq=nonce, ack=nonce), (0, 0))
            self._await_ack(sock, nonce)
        except OSError as exc:
            sock.close()
            raise ProcConnectorError(explain_os_error(exc)) from exc
        except ProcConnectorError:
            sock.close()
            raise
        self._sock = sock

    def recv(self, timeout: float) -> bytes | None:
        """One datagram, or None after `timeout` seconds. Raises OSError(ENOBUFS) on overrun."""
        assert self._sock is not None
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv(65536)
        except TimeoutError:
            return None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        # The kernel counts listeners and builds events while any is left.
        with contextlib.suppress(OSError):
            sock.sendto(control_message(PROC_CN_MCAST_IGNORE, seq=0, ack=0), (0, 0))
        sock.close()

    @staticmethod
    def _set_rcvbuf(sock: socket.socket) -> None:
        # A large buffer rides out bursts (fork storms) without ENOBUFS.
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF_BYTES)
                return
            except OSError:
                continue

    def _await_ack(self, sock: socket.socket, nonce: int) -> None:
        deadline = time.monotonic() + self._ack_timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    continue
                raise
            events, _ = parse_datagram(data)
            for event in events:
                if event.kind == "ack" and event.ack == nonce + 1:
                    if event.error:
                        raise OSError(event.error, os.strerror(event.error))
                    return
            self.early.append(data)
        raise ProcConnectorError(
            "the kernel did not acknowledge the subscription (process events are only sent "
            "to the initial user and pid namespace: run the agent on the host, not in a "
            "container)"
        )
