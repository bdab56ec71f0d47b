"""Turns cn_proc kernel events into process starts and exits (the netlink mode's state)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .ignore import IgnoredExecutables
from .netlink import ExitStatus, KernelEvent, decode_wait_status
from .procfs import ProcessInfo, ProcReader

Count = Callable[[str, int], None]


@dataclass(frozen=True)
class Observed:
    """A process start or exit ready to become an event; timestamp is the kernel's (monotonic)."""

    kind: str  # "start" | "end"
    info: ProcessInfo
    timestamp_ns: int
    status: ExitStatus | None = None


@dataclass
class _Tracked:
    info: ProcessInfo
    ignored: bool


class ProcessTracker:
    """Keeps pid -> description for processes whose exec was seen (or that ran at `seed()`).

    Contract:
    * exec of a thread-group leader -> a start, described from /proc at once (the caller is
      the receiving thread, so a process living milliseconds is still described). When /proc
      has nothing left, the start carries what is known (pid, ppid from the fork event,
      parent) and "vanished_before_read" is counted.
    * exit of a tracked process -> an end carrying its cached description and exit status.
      Exits of processes never exec'd while watched (fork-only children such as subshells and
      pre-fork workers started after `seed()`) are not reported: they had no start either.
    * Thread events (pid != tgid) are ignored. The cache holds at most `max_tracked` entries;
      evicting a described one is counted as "cache_evicted" (its exit will not be reported).
    """

    def __init__(
        self,
        reader: ProcReader,
        *,
        max_tracked: int,
        ignore: IgnoredExecutables,
        count: Count,
    ) -> None:
        self._reader = reader
        self._max = max_tracked
        self._ignore = ignore
        self._count = count
        self._procs: OrderedDict[int, _Tracked] = OrderedDict()
        # child -> parent tgid from fork events, for processes gone before /proc is read.
        self._forks: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._procs)

    def seed(self) -> None:
        """Describe the processes already running, so their exits can be reported."""
        for pid in self._reader.list_pids():
            info = self._reader.describe(pid)
            if info is not None:
                self._remember(info)
        for tracked in self._procs.values():
            self._fill_parent(tracked.info)

    def handle(self, event: KernelEvent) -> Observed | None:
        if event.is_thread:
            return None
        if event.kind == "fork":
            self._forks[event.tgid] = event.parent_tgid
            if len(self._forks) > self._max:
                self._forks.popitem(last=False)
            return None
        if event.kind == "exec":
            return self._exec(event)
        if event.kind == "exit":
            return self._exit(event)
        return None

    def _exec(self, event: KernelEvent) -> Observed | None:
        pid = event.tgid
        ppid = self._forks.pop(pid, 0)
        info = self._reader.describe(pid)
        if info is None:
            self._count("vanished_before_read", 1)
            info = ProcessInfo(pid=pid, ppid=ppid)
        for problem in info.problems:
            self._count(problem, 1)
        self._fill_parent(info)
        tracked = self._remember(info)
        if tracked.ignored:
            self._count("ignored_executable", 1)
            return None
        return Observed("start", info, event.timestamp_ns)

    def _exit(self, event: KernelEvent) -> Observed | None:
        pid = event.tgid
        self._forks.pop(pid, None)
        tracked = self._procs.pop(pid, None)
        if tracked is None:
            return None
        if tracked.ignored:
            self._count("ignored_executable", 1)
            return None
        status = decode_wait_status(event.wait_status)
        return Observed("end", tracked.info, event.timestamp_ns, status)

    def _remember(self, info: ProcessInfo) -> _Tracked:
        tracked = _Tracked(info, self._ignore.matches(info))
        self._procs.pop(info.pid, None)
        self._procs[info.pid] = tracked
        if len(self._procs) > self._max:
            self._procs.popitem(last=False)
            self._count("cache_evicted", 1)
        return tracked

    def _fill_parent(self, info: ProcessInfo) -> None:
        parent = self._procs.get(info.ppid)
        if parent is not None and parent.info.pid != info.pid and parent.info.executable:
            info.parent_executable = parent.info.executable
            info.parent_command_line = parent.info.command_line
        else:
            self._reader.describe_parent(info)
