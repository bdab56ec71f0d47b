"""The /proc reader on fixture trees."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from agent.sources.process import procfs
from agent.sources.process.procfs import ProcReader, parse_cmdline, parse_stat

from .proctree import BTIME, CLK_TCK, ProcTree


@pytest.fixture
def tree(tmp_path: Path) -> ProcTree:
    return ProcTree(tmp_path / "proc")


def reader(tree: ProcTree) -> ProcReader:
    return ProcReader(tree.root, clk_tck=CLK_TCK)


def test_describes_a_process(tree: ProcTree) -> None:
    tree.add(42, comm="bash", ppid=7, start=1234, args=("-bash", "-l"), exe="/usr/bin/bash")
    tree.add(7, comm="sshd", args=("sshd: bob [priv]",), exe="/usr/sbin/sshd")
    info = reader(tree).describe(42)
    assert info is not None
    assert (info.pid, info.ppid, info.name) == (42, 7, "bash")
    assert info.executable == "/usr/bin/bash"
    assert info.args == ("-bash", "-l")
    assert info.command_line == "-bash -l"
    assert info.cwd == "/"
    assert info.uid == 0
    assert info.start_ticks == 1234
    assert info.start_time_ns == BTIME * 10**9 + 1234 * 10**9 // CLK_TCK
    assert info.problems == []
    reader(tree).describe_parent(info)
    assert (info.parent_executable, info.parent_command_line) == (
        "/usr/sbin/sshd",
        "sshd: bob [priv]",
    )


@pytest.mark.parametrize(
    ("comm", "expected"),
    [("a b", "a b"), ("(sd-pam)", "(sd-pam)"), ("x) S 9 (y", "x) S 9 (y"), ("", "")],
)
def test_comm_with_spaces_and_parentheses(tree: ProcTree, comm: str, expected: str) -> None:
    tree.add(5, comm=comm, ppid=3, start=77)
    info = reader(tree).describe(5)
    assert info is not None
    assert (info.name, info.ppid, info.start_ticks) == (expected, 3, 77)


@pytest.mark.parametrize("text", ["", "12 (x S 1 2", "12 (x) S", "12 (x) S one 2 3", "garbage"])
def test_malformed_stat_is_none(text: str) -> None:
    assert parse_stat(text) is None


def test_cmdline_with_nuls() -> None:
    assert parse_cmdline(b"/bin/sh\0-c\0echo a  b\0") == ("/bin/sh", "-c", "echo a  b")
    assert parse_cmdline(b"a\0\0b\0") == ("a", "", "b")  # an empty argument is kept
    assert parse_cmdline(b"") == ()
    assert parse_cmdline(b"nginx: worker process") == ("nginx: worker process",)  # rewritten
    assert parse_cmdline(b"caf\xe9\0") == ("caf\udce9",)  # not UTF-8: kept, not dropped


def test_deleted_executable(tree: ProcTree) -> None:
    tree.add(9, exe="/tmp/.x/implant (deleted)")
    info = reader(tree).describe(9)
    assert info is not None
    assert (info.executable, info.executable_deleted) == ("/tmp/.x/implant", True)


def test_kernel_thread_or_zombie_has_missing_fields_without_problems(tree: ProcTree) -> None:
    tree.add(2, comm="kthreadd", ppid=0, args=(), exe=None, cwd=None, uid=None)
    info = reader(tree).describe(2)
    assert info is not None
    assert (info.name, info.executable, info.args, info.cwd, info.uid) == (
        "kthreadd",
        "",
        (),
        "",
        None,
    )
    assert info.problems == []


def test_gone_process_is_none(tree: ProcTree) -> None:
    assert reader(tree).describe(31337) is None


def test_permission_errors_are_reported_as_problems(
    tree: ProcTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root, file modes do not stop reads, so the refusal is injected (hidepid, ptrace rules).
    tree.add(11, exe="/usr/bin/secret")
    real_readlink, real_read = os.readlink, procfs._read

    def readlink(path: str) -> str:
        if path.endswith("/11/exe"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_readlink(path)

    def read(path: str, limit: int = 65536) -> bytes:
        if path.endswith("/11/cmdline"):
            raise OSError(errno.EIO, "I/O error", path)
        return real_read(path, limit)

    monkeypatch.setattr(os, "readlink", readlink)
    monkeypatch.setattr(procfs, "_read", read)
    info = reader(tree).describe(11)
    assert info is not None
    assert info.executable == ""
    assert info.cwd == "/"
    assert sorted(info.problems) == ["cmdline_unreadable", "exe_permission_denied"]


def test_long_cmdline_is_cut(tree: ProcTree) -> None:
    tree.add(12, args=("x" * (procfs.MAX_CMDLINE_BYTES + 10),))
    info = reader(tree).describe(12)
    assert info is not None
    assert info.args_truncated
    assert len(info.command_line) == procfs.MAX_CMDLINE_BYTES


def test_lists_only_pids(tree: ProcTree) -> None:
    tree.add(3)
    tree.add(40)
    assert sorted(reader(tree).list_pids()) == [3, 40]


def test_missing_btime_gives_no_start_time(tmp_path: Path) -> None:
    tree = ProcTree(tmp_path / "proc")
    (tree.root / "stat").write_text("cpu 1 2 3\n")
    tree.add(4)
    info = reader(tree).describe(4)
    assert info is not None
    assert info.start_time_ns == 0


def test_real_proc_describes_this_process() -> None:
    info = ProcReader().describe(os.getpid())
    assert info is not None
    assert info.executable == os.path.realpath(f"/proc/{os.getpid()}/exe")
    assert info.ppid == os.getppid()
    assert info.uid == os.geteuid()
    assert info.cwd == os.getcwd()
    assert info.start_time_ns > 0
