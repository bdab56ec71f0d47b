"""Reading one process's description from /proc (any root, so tests use fixture trees).

Everything here is blocking file I/O: callers run it on a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

DELETED_SUFFIX = " (deleted)"
# A command line longer than this is cut (ARG_MAX can be 2 MiB; events stay small).
MAX_CMDLINE_BYTES = 32 * 1024
_STAT_STARTTIME = 19  # field 22 of /proc/<pid>/stat, counted from the field after "(comm)"


@dataclass(frozen=True)
class ProcStat:
    """The parts of /proc/<pid>/stat the source uses."""

    comm: str
    ppid: int
    start_ticks: int


@dataclass
class ProcessInfo:
    """What is known about one process; fields stay empty when they could not be read.

    `problems` lists reasons (for health.unparsed) when a field could not be read for a reason
    other than the process being a kernel thread or a zombie.
    """

    pid: int
    ppid: int = 0
    name: str = ""
    executable: str = ""
    executable_deleted: bool = False
    args: tuple[str, ...] = ()
    args_truncated: bool = False
    uid: int | None = None
    cwd: str = ""
    start_ticks: int = 0
    start_time_ns: int = 0
    parent_executable: str = ""
    parent_command_line: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def command_line(self) -> str:
        return " ".join(self.args)


def parse_stat(text: str) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when it is malformed.

    comm may hold spaces and parentheses ("(sd-pam)", "a) b"), so it runs from the first "("
    to the last ")".
    """
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 0 or close_at < open_at:
        return None
    rest = text[close_at + 1 :].split()
    try:
        return ProcStat(
            comm=text[open_at + 1 : close_at],
            ppid=int(rest[1]),
            start_ticks=int(rest[_STAT_STARTTIME]),
        )
    except (IndexError, ValueError):
        return None


def parse_cmdline(raw: bytes) -> tuple[str, ...]:
    """Split a NUL-separated /proc/<pid>/cmdline into arguments (empty ones inside kept)."""
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if not raw:
        return ()
    return tuple(raw.decode("utf-8", "surrogateescape").split("\0"))


def parse_effective_uid(status: str) -> int | None:
    """The effective uid from /proc/<pid>/status ("Uid: real effective saved fs")."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            try:
                return int(parts[2])
            except (IndexError, ValueError):
                return None
    return None


def _read(path: str, limit: int = 65536) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _denied(exc: OSError) -> bool:
    return exc.errno in (errno.EACCES, errno.EPERM)


class ProcReader:
    """Reads process descriptions under `proc_root` (normally /proc)."""

    def __init__(self, proc_root: Path = Path("/proc"), *, clk_tck: int | None = None) -> None:
        self.root = str(proc_root)
        self.clk_tck = clk_tck or os.sysconf("SC_CLK_TCK")
        self._boot_ns: int | None = None

    def boot_time_ns(self) -> int:
        """Boot time (btime in <proc>/stat) as Unix ns; 0 if it cannot be read.

        btime is whole seconds. When it agrees with this host's clocks (the root is the real
        /proc), the sub-second part is taken from them, so start times are not up to 1 s early.
        """
        if self._boot_ns is None:
            self._boot_ns = 0
            try:
                for line in _read(f"{self.root}/stat").decode("ascii", "replace").splitlines():
                    if line.startswith("btime "):
                        self._boot_ns = int(line.split()[1]) * 1_000_000_000
                        break
            except (OSError, ValueError, IndexError):
                pass
            precise = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
            if self._boot_ns and abs(precise - self._boot_ns) < 2_000_000_000:
                self._boot_ns = precise
        return self._boot_ns

    def list_pids(self) -> list[int]:
        """Process ids (thread-group leaders) listed in the root; threads are not listed."""
        return [int(name) for name in os.listdir(self.root) if name.isdigit()]

    def read_stat(self, pid: int) -> ProcStat | None:
        """The process's stat, or None when it is gone or unreadable."""
        try:
            return parse_stat(_read(f"{self.root}/{pid}/stat").decode("utf-8", "replace"))
        except OSError:
            return None

    def start_time_ns(self, start_ticks: int) -> int:
        boot = self.boot_time_ns()
        if not boot:
            return 0
        return boot + start_ticks * 1_000_000_000 // self.clk_tck

    def describe(self, pid: int, stat: ProcStat | None = None) -> ProcessInfo | None:
        """Everything readable about `pid`; None when its stat cannot be read (it is gone)."""
        stat = stat or self.read_stat(pid)
        if stat is None:
            return None
        info = ProcessInfo(
            pid=pid,
            ppid=stat.ppid,
            name=stat.comm,
            start_ticks=stat.start_ticks,
            start_time_ns=self.start_time_ns(stat.start_ticks),
        )
        base = f"{self.root}/{pid}"
        try:
            raw = _read(f"{base}/cmdline", MAX_CMDLINE_BYTES + 1)
            info.args_truncated = len(raw) > MAX_CMDLINE_BYTES
            info.args = parse_cmdline(raw[:MAX_CMDLINE_BYTES])
        except OSError as exc:
            self._note(info, "cmdline", exc)
        try:
            exe = os.readlink(f"{base}/exe")
            if exe.endswith(DELETED_SUFFIX):
                exe, info.executable_deleted = exe[: -len(DELETED_SUFFIX)], True
            info.executable = exe
        except OSError as exc:
            self._note(info, "exe", exc)
        try:
            info.cwd = os.readlink(f"{base}/cwd")
        except OSError as exc:
            self._note(info, "cwd", exc)
        try:
            info.uid = parse_effective_uid(_read(f"{base}/status").decode("utf-8", "replace"))
        except OSError as exc:
            self._note(info, "status", exc)
        return info

    def describe_parent(self, info: ProcessInfo) -> None:
        """Fill the parent fields of `info` from /proc/<ppid> (best effort)."""
        if info.ppid <= 0:
            return
        base = f"{self.root}/{info.ppid}"
        with contextlib.suppress(OSError):
            exe = os.readlink(f"{base}/exe")
            info.parent_executable = exe.removesuffix(DELETED_SUFFIX)
        with contextlib.suppress(OSError):
            raw = _read(f"{base}/cmdline", MAX_CMDLINE_BYTES)
            info.parent_command_line = " ".join(parse_cmdline(raw))

    @staticmethod
    def _note(info: ProcessInfo, what: str, exc: OSError) -> None:
        # ENOENT/ESRCH: a kernel thread has no exe, a zombie or a process exiting right now
        # has lost its files; that is not a reading problem.
        if _denied(exc):
            info.problems.append(f"{what}_permission_denied")
        elif exc.errno not in (errno.ENOENT, errno.ESRCH):
            info.problems.append(f"{what}_unreadable")
