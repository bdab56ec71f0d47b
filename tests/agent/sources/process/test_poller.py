"""ProcPoller on a fixture tree that changes between polls."""

from __future__ import annotations

from pathlib import Path

from agent.sources.process.ignore import IgnoredExecutables
from agent.sources.process.poller import ProcPoller
from agent.sources.process.procfs import ProcReader

from .proctree import CLK_TCK, ProcTree


def make(
    tmp_path: Path, ignore: tuple[str, ...] = ()
) -> tuple[ProcTree, ProcPoller, dict[str, int]]:
    tree = ProcTree(tmp_path / "proc")
    counts: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        counts[reason] = counts.get(reason, 0) + n

    poller = ProcPoller(
        ProcReader(tree.root, clk_tck=CLK_TCK), ignore=IgnoredExecutables(ignore), count=count
    )
    return tree, poller, counts


def test_first_poll_is_a_baseline_then_starts_and_exits(tmp_path: Path) -> None:
    tree, poller, counts = make(tmp_path)
    tree.add(1, comm="init", ppid=0, exe="/sbin/init", args=("/sbin/init",))
    tree.add(50, comm="cron", exe="/usr/sbin/cron", args=("/usr/sbin/cron", "-f"))
    first = poller.poll()
    assert (first.started, first.exited) == ([], [])

    tree.add(60, comm="sh", ppid=50, start=900, exe="/usr/bin/dash", args=("/bin/sh", "-c", "x"))
    second = poller.poll()
    (started,) = second.started
    assert (started.pid, started.executable, started.command_line) == (
        60,
        "/usr/bin/dash",
        "/bin/sh -c x",
    )
    assert (started.parent_executable, started.parent_command_line) == (
        "/usr/sbin/cron",
        "/usr/sbin/cron -f",
    )
    assert second.exited == []

    tree.remove(60)
    third = poller.poll()
    assert third.started == []
    assert [i.pid for i in third.exited] == [60]
    assert third.exited[0].executable == "/usr/bin/dash"  # described when it was seen
    assert poller.poll().exited == []
    assert counts == {}


def test_reused_pid_is_an_exit_and_a_start(tmp_path: Path) -> None:
    tree, poller, _ = make(tmp_path)
    tree.add(70, start=100, exe="/usr/bin/old")
    poller.poll()
    tree.remove(70)
    tree.add(70, start=200, exe="/usr/bin/new")
    result = poller.poll()
    assert [i.executable for i in result.exited] == ["/usr/bin/old"]
    assert [i.executable for i in result.started] == ["/usr/bin/new"]


def test_ignored_executables(tmp_path: Path) -> None:
    tree, poller, counts = make(tmp_path, ignore=("/usr/bin/noisy",))
    poller.poll()
    tree.add(80, exe="/usr/bin/noisy")
    tree.add(81, exe="/usr/bin/other")
    assert [i.pid for i in poller.poll().started] == [81]
    tree.remove(80)
    tree.remove(81)
    assert [i.pid for i in poller.poll().exited] == [81]
    assert counts == {"ignored_executable": 2}


def test_process_gone_between_listing_and_reading_is_skipped(tmp_path: Path) -> None:
    tree, poller, _ = make(tmp_path)
    poller.poll()
    (tree.root / "90").mkdir()  # listed, but its stat is already gone
    assert poller.poll().started == []
