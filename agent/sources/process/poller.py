"""The poll mode: diff the set of (pid, start time) under /proc between polls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .ignore import IgnoredExecutables
from .procfs import ProcessInfo, ProcReader

Count = Callable[[str, int], None]


@dataclass
class PollResult:
    started: list[ProcessInfo] = field(default_factory=list)
    exited: list[ProcessInfo] = field(default_factory=list)


class ProcPoller:
    """Finds processes started and exited since the previous `poll()` (blocking; use a thread).

    A process is identified by (pid, start ticks), so a pid reused between two polls is seen
    as an exit plus a start. The first poll only records what runs (no events). Processes that
    start and exit between two polls are never seen, and exit codes are unknown. Each poll
    reads every /proc/<pid>/stat; only new processes are described in full.
    """

    def __init__(self, reader: ProcReader, *, ignore: IgnoredExecutables, count: Count) -> None:
        self._reader = reader
        self._ignore = ignore
        self._count = count
        self._known: dict[int, tuple[ProcessInfo, bool]] = {}  # pid -> (info, ignored)
        self._primed = False

    def poll(self) -> PollResult:
        result = PollResult()
        current: dict[int, tuple[ProcessInfo, bool]] = {}
        fresh: list[ProcessInfo] = []
        for pid in self._reader.list_pids():
            stat = self._reader.read_stat(pid)
            if stat is None:
                continue  # exited while listing
            known = self._known.get(pid)
            if known is not None and known[0].start_ticks == stat.start_ticks:
                current[pid] = known
                continue
            info = self._reader.describe(pid, stat)
            if info is None:
                continue
            for problem in info.problems:
                self._count(problem, 1)
            ignored = self._ignore.matches(info)
            current[pid] = (info, ignored)
            fresh.append(info)
        for pid, (info, ignored) in self._known.items():
            now = current.get(pid)
            if now is None or now[0] is not info:
                self._report(result.exited, info, ignored)
        for info in fresh:
            parent = current.get(info.ppid)
            if parent is not None and parent[0].executable:
                info.parent_executable = parent[0].executable
                info.parent_command_line = parent[0].command_line
            else:
                self._reader.describe_parent(info)
            if self._primed:
                self._report(result.started, info, current[info.pid][1])
        self._known = current
        self._primed = True
        return result

    def _report(self, into: list[ProcessInfo], info: ProcessInfo, ignored: bool) -> None:
        if ignored:
            self._count("ignored_executable", 1)
        else:
            into.append(info)
