"""ProcessTracker: kernel events + a fixture /proc -> starts and exits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sources.process.ignore import IgnoredExecutables
from agent.sources.process.netlink import ExitStatus, KernelEvent, parse_datagram
from agent.sources.process.procfs import ProcReader
from agent.sources.process.tracker import Observed, ProcessTracker

from . import kernelmsg as km
from .proctree import CLK_TCK, ProcTree


class Counts(dict[str, int]):
    def __call__(self, reason: str, n: int) -> None:
        self[reason] = self.get(reason, 0) + n


@pytest.fixture
def tree(tmp_path: Path) -> ProcTree:
    t = ProcTree(tmp_path / "proc")
    t.add(100, comm="bash", args=("-bash",), exe="/usr/bin/bash")
    return t


def tracker(
    tree: ProcTree, counts: Counts, *, max_tracked: int = 100, ignore: str = ""
) -> ProcessTracker:
    return ProcessTracker(
        ProcReader(tree.root, clk_tck=CLK_TCK),
        max_tracked=max_tracked,
        ignore=IgnoredExecutables([ignore] if ignore else []),
        count=counts,
    )


def feed(t: ProcessTracker, data: bytes) -> list[Observed]:
    events, problems = parse_datagram(data)
    assert problems == []
    return [o for e in events if (o := t.handle(e)) is not None]


def test_exec_and_exit_of_a_child(tree: ProcTree) -> None:
    counts = Counts()
    t = tracker(tree, counts)
    t.seed()
    tree.add(101, comm="sh", ppid=100, args=("/bin/sh", "-c", "exit 3"), exe="/usr/bin/dash")
    out = feed(t, km.fork(100, 101) + km.exec_(101, ts=50))
    tree.remove(101)  # gone by the time the exit arrives: the cache describes it
    out += feed(t, km.exit_(101, 3 << 8, ts=90))
    start, end = out
    assert (start.kind, start.timestamp_ns, start.info.executable) == ("start", 50, "/usr/bin/dash")
    assert start.info.args == ("/bin/sh", "-c", "exit 3")
    assert (start.info.ppid, start.info.parent_executable) == (100, "/usr/bin/bash")
    assert start.info.parent_command_line == "-bash"
    assert (end.kind, end.timestamp_ns, end.info, end.status) == (
        "end",
        90,
        start.info,
        ExitStatus(3),
    )
    assert counts == {}
    assert len(t) == 1


def test_seeded_process_exit_is_reported(tree: ProcTree) -> None:
    t = tracker(tree, Counts())
    t.seed()
    (end,) = feed(t, km.exit_(100, 9))
    assert (end.info.executable, end.status) == ("/usr/bin/bash", ExitStatus(-9, signal=9))


def test_thread_and_fork_only_activity_is_not_reported(tree: ProcTree) -> None:
    t = tracker(tree, Counts())
    t.seed()
    data = km.fork(100, 100, child_pid=150) + km.exit_(150, 0, tgid=100)  # a thread
    data += km.fork(100, 151) + km.exit_(151, 0)  # a subshell that never exec'd
    assert feed(t, data) == []
    assert len(t) == 1


def test_vanished_before_read_keeps_what_is_known(tree: ProcTree) -> None:
    counts = Counts()
    t = tracker(tree, counts)
    t.seed()
    (start,) = feed(t, km.fork(100, 160) + km.exec_(160))
    assert (start.info.pid, start.info.ppid, start.info.executable) == (160, 100, "")
    assert start.info.parent_executable == "/usr/bin/bash"
    assert counts == {"vanished_before_read": 1}
    (end,) = feed(t, km.exit_(160, 0))
    assert end.info.pid == 160


def test_cache_is_bounded_and_evictions_counted(tree: ProcTree) -> None:
    counts = Counts()
    t = tracker(tree, counts, max_tracked=2)
    for pid in (201, 202, 203):
        tree.add(pid, ppid=100)
        feed(t, km.exec_(pid))
    assert len(t) == 2
    assert counts == {"cache_evicted": 1}
    assert feed(t, km.exit_(201, 0)) == []  # evicted: nothing left to describe it
    assert len(feed(t, km.exit_(203, 0))) == 1


def test_ignored_executable_is_counted_on_exec_and_exit(tree: ProcTree) -> None:
    counts = Counts()
    t = tracker(tree, counts, ignore="/usr/local/bin/check.sh")
    tree.add(300, args=("/bin/sh", "/usr/local/bin/check.sh"), exe="/usr/bin/dash")
    tree.add(301, args=("/usr/local/bin/check.sh",), exe="/usr/local/bin/check.sh")
    tree.add(302, args=("/bin/sh", "-c", "/usr/local/bin/check.sh"), exe="/usr/bin/dash")
    out = feed(t, km.exec_(300) + km.exec_(301) + km.exec_(302))
    out += feed(t, km.exit_(300, 0) + km.exit_(301, 0) + km.exit_(302, 0))
    assert [(o.kind, o.info.pid) for o in out] == [("start", 302), ("end", 302)]
    assert counts == {"ignored_executable": 4}


def test_unreadable_fields_are_counted(tree: ProcTree) -> None:
    counts = Counts()
    t = tracker(tree, counts)
    tree.add(400)
    (tree.root / "400" / "exe").unlink()
    (tree.root / "400" / "exe").mkdir()  # readlink on a directory: EINVAL, not ENOENT
    (start,) = feed(t, km.exec_(400))
    assert start.info.executable == ""
    assert counts == {"exe_unreadable": 1}


def test_ack_and_unknown_kinds_are_ignored(tree: ProcTree) -> None:
    t = tracker(tree, Counts())
    assert t.handle(KernelEvent("ack", ack=5)) is None
    assert t.handle(KernelEvent("other")) is None
