"""Hand-built cn_proc datagrams, laid out as the kernel sends them (host byte order)."""

from __future__ import annotations

import struct

NLMSG_DONE = 3
PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT, PROC_EVENT_UID = 1, 2, 0x80000000, 4


def message(what: int, union: bytes, *, ts: int = 1000, idx: int = 1, ack: int = 0) -> bytes:
    body = struct.pack("=IIQ", what, 0, ts) + union
    cn = struct.pack("=IIIIHH", idx, 1, 0, ack, len(body), 0)
    length = 16 + len(cn) + len(body)
    msg = struct.pack("=IHHII", length, NLMSG_DONE, 0, 0, 0) + cn + body
    return msg + b"\0" * (-len(msg) % 4)


def fork(parent: int, child: int, *, child_pid: int | None = None, ts: int = 1000) -> bytes:
    union = struct.pack("=IIII", parent, parent, child if child_pid is None else child_pid, child)
    return message(PROC_EVENT_FORK, union, ts=ts)


def exec_(pid: int, *, tgid: int | None = None, ts: int = 2000) -> bytes:
    return message(PROC_EVENT_EXEC, struct.pack("=II", pid, pid if tgid is None else tgid), ts=ts)


def exit_(
    pid: int, status: int, *, tgid: int | None = None, parent: int | None = 1, ts: int = 3000
) -> bytes:
    union = struct.pack("=IIII", pid, pid if tgid is None else tgid, status, 17)
    if parent is not None:  # the parent fields exist since Linux 4.18
        union += struct.pack("=II", parent, parent)
    return message(PROC_EVENT_EXIT, union, ts=ts)


def ack(nonce: int, err: int = 0) -> bytes:
    return message(0, struct.pack("=I", err), ack=nonce)
