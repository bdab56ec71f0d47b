"""ProcessSource on the event loop: fixture trees with a scripted connector, and the real kernel."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.sources.base import Checkpoint
from agent.sources.process import ProcessConfig, ProcessSource
from agent.sources.process.netlink import ProcConnector, ProcConnectorError
from canhgac.errors import SourceUnavailableError
from canhgac.strictmodel import ValidationError
from canhgac.v1 import events_pb2
from tests.agent.sources import harness
from tests.agent.sources.harness import CLOCK_NS, context, running, wait_until
from tests.requirements import require

from . import kernelmsg as km
from .proctree import ProcTree


class CollectingSink(harness.CollectingSink):
    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        assert checkpoint is None  # process events are live: nothing to resume from
        await super().emit(events, checkpoint)

    def of(self, pid: int) -> list[events_pb2.Event]:
        return [e for e in self.events if e.process.pid == pid]


class ScriptedConnector(ProcConnector):
    """Hands out prepared datagrams (or errors) instead of reading a socket."""

    def __init__(self, script: list[bytes | OSError]) -> None:
        super().__init__()
        self.script = script
        self.closed = False

    def open(self) -> None:
        pass

    def recv(self, timeout: float) -> bytes | None:
        if not self.script:
            return None
        item = self.script.pop(0)
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


class RefusingConnector(ProcConnector):
    def open(self) -> None:
        raise ProcConnectorError("permission denied (needs root / CAP_NET_ADMIN)")


def fixture_source(
    tree: ProcTree, connector: ProcConnector | None = None, **cfg: object
) -> ProcessSource:
    return ProcessSource(
        ProcessConfig.model_validate(cfg),
        proc_root=tree.root,
        users=lambda uid: {0: "root", 1000: "bob"}.get(uid, ""),
        monotonic_ns=lambda: 1_000,
        connector_factory=(lambda: connector) if connector else RefusingConnector,
    )


def test_config_ranges() -> None:
    assert ProcessConfig().model_dump() == {
        "mode": "auto",
        "poll_interval_ms": 1000,
        "max_tracked": 32768,
        "ignore_executables": [],
    }
    for bad in (
        {"poll_interval_ms": 99},
        {"poll_interval_ms": 60_001},
        {"mode": "ebpf"},
        {"ignore_executables": ["check.sh"]},
        {"max_tracked": 1},
        {"extra": 1},
    ):
        with pytest.raises(ValidationError):
            ProcessConfig.model_validate(bad)


async def test_netlink_pipeline_on_a_fixture_tree(tmp_path: Path) -> None:
    tree = ProcTree(tmp_path / "proc")
    tree.add(100, comm="bash", args=("-bash",), exe="/usr/bin/bash", uid=1000)
    tree.add(101, comm="id", ppid=100, args=("/usr/bin/id", "-u"), exe="/usr/bin/id", uid=1000)
    connector = ScriptedConnector(
        [km.fork(100, 101, ts=5) + km.exec_(101, ts=10), km.exit_(101, 1 << 8, ts=20)]
    )
    sink = CollectingSink()
    source = fixture_source(tree, connector, mode="netlink")
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 2)
        assert (source.health.state, source.health.mode) == ("running", "netlink")
    assert connector.closed
    start, end = sink.events
    assert (start.category, start.type, start.action, start.source) == (
        "process",
        "start",
        "exec",
        "process",
    )
    assert (start.agent_id, start.host, start.created_ns) == ("agent-1", "web1", CLOCK_NS)
    # Kernel timestamps are monotonic: shifted by wall clock minus monotonic clock.
    assert start.time_ns == CLOCK_NS - 1_000 + 10
    assert start.outcome == events_pb2.OUTCOME_SUCCESS
    p = start.process
    assert (p.pid, p.ppid, p.executable, p.command_line, list(p.args)) == (
        101,
        100,
        "/usr/bin/id",
        "/usr/bin/id -u",
        ["/usr/bin/id", "-u"],
    )
    assert (p.user, p.uid, p.name, p.parent_executable, p.parent_command_line) == (
        "bob",
        1000,
        "id",
        "/usr/bin/bash",
        "-bash",
    )
    assert (end.type, end.action, end.outcome) == ("end", "exit", events_pb2.OUTCOME_FAILURE)
    assert (end.process.exit_code, end.process.end_time_ns) == (1, CLOCK_NS - 1_000 + 20)
    assert end.process.executable == "/usr/bin/id"
    assert source.health.events == 2


async def test_a_fork_storm_is_batched_and_overruns_are_counted(tmp_path: Path) -> None:
    tree = ProcTree(tmp_path / "proc")
    # 1203 short processes, gone before /proc could be read, and one kernel drop.
    script: list[bytes | OSError] = [
        km.exec_(1000 + i) + km.exit_(1000 + i, 0) for i in range(1203)
    ]
    script.insert(600, OSError(errno.ENOBUFS, "No buffer space available"))
    sink = CollectingSink()
    source = fixture_source(tree, ScriptedConnector(script), mode="auto")
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 2 * 1203)
    assert max(sink.batch_sizes) <= 500
    assert len(sink.batch_sizes) < 50  # not one emit per process
    assert source.health.unparsed == {"netlink_overrun": 1, "vanished_before_read": 1203}
    assert [e.type for e in sink.of(1500)] == ["start", "end"]


async def test_auto_falls_back_to_polling_and_says_why(tmp_path: Path) -> None:
    tree = ProcTree(tmp_path / "proc")
    tree.add(1, comm="init", ppid=0, exe="/sbin/init", args=("/sbin/init",))
    sink = CollectingSink()
    source = fixture_source(tree, poll_interval_ms=100)
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "running")
        assert source.health.mode == "poll"
        assert source.health.detail == (
            "netlink unavailable: permission denied (needs root / CAP_NET_ADMIN); "
            "polling /proc every 0.1 s: processes shorter than that may be missed"
        )
        tree.add(77, comm="nc", args=("nc", "-l", "4444"), exe="/usr/bin/nc.openbsd", start=3000)
        await wait_until(lambda: len(sink.of(77)) == 1)
        tree.remove(77)
        await wait_until(lambda: len(sink.of(77)) == 2)
    start, end = sink.of(77)
    assert (start.type, start.process.executable, start.process.parent_executable) == (
        "start",
        "/usr/bin/nc.openbsd",
        "/sbin/init",
    )
    assert start.time_ns == start.process.start_time_ns > 0
    assert (end.type, end.outcome, end.process.end_time_ns) == (
        "end",
        events_pb2.OUTCOME_UNKNOWN,
        0,
    )
    assert sink.events == sink.of(77)  # init, already running, is no start


async def test_configured_netlink_that_cannot_run_is_unavailable(tmp_path: Path) -> None:
    source = fixture_source(ProcTree(tmp_path / "proc"), mode="netlink")
    with pytest.raises(SourceUnavailableError, match="permission denied"):
        await source.run(context(), CollectingSink(), asyncio.Event())
    assert source.health.state == "unavailable"


async def test_unlistable_proc_is_unavailable(tmp_path: Path) -> None:
    source = ProcessSource(ProcessConfig(mode="poll"), proc_root=tmp_path / "nope")
    with pytest.raises(SourceUnavailableError, match="cannot list"):
        await source.run(context(), CollectingSink(), asyncio.Event())


# --- the real kernel and the real /proc -------------------------------------------------


def require_root() -> None:
    require(os.geteuid() == 0, "root, for the process-events connector (CAP_NET_ADMIN)")


async def test_real_netlink_sees_a_short_process_and_its_exit_code() -> None:
    require_root()
    sink = CollectingSink()
    source = ProcessSource(ProcessConfig(mode="netlink"))
    async with running(source, sink, context(clock=time.time_ns)):
        await wait_until(lambda: source.health.state == "running")
        argv = ["/bin/sh", "-c", "sleep 0.05; exit 3"]
        proc = await asyncio.create_subprocess_exec(*argv)
        assert await proc.wait() == 3
        await wait_until(lambda: [e.type for e in sink.of(proc.pid)] == ["start", "end"])
    assert source.health.mode == "netlink"
    start, end = sink.of(proc.pid)
    assert start.process.executable == os.path.realpath("/bin/sh")
    assert list(start.process.args) == argv
    assert start.process.command_line == "/bin/sh -c sleep 0.05; exit 3"
    assert start.process.ppid == os.getpid()
    assert (start.process.uid, start.process.user) == (0, "root")
    assert start.process.cwd == os.getcwd()
    assert 0 < start.process.start_time_ns <= end.process.end_time_ns
    assert end.process.exit_code == 3
    assert end.outcome == events_pb2.OUTCOME_FAILURE
    assert end.process.executable == start.process.executable
    # The sleep child (exec'd by dash) is described with dash as its parent.
    sleeps = [e for e in sink.events if e.type == "start" and e.process.ppid == proc.pid]
    assert [e.process.args[0] for e in sleeps] == ["sleep"]
    assert sleeps[0].process.parent_executable == os.path.realpath("/bin/sh")


async def test_real_poll_sees_a_two_second_process() -> None:
    sink = CollectingSink()
    source = ProcessSource(ProcessConfig(mode="poll", poll_interval_ms=100))
    async with running(source, sink):
        # "running" once the baseline poll is done: what starts from now on is reported.
        await wait_until(lambda: source.health.state == "running")
        assert source.health.mode == "poll"
        proc = subprocess.Popen(["/bin/sleep", "2"])
        try:
            await wait_until(lambda: len(sink.of(proc.pid)) >= 1)
        finally:
            await asyncio.to_thread(proc.wait)
        await wait_until(lambda: len(sink.of(proc.pid)) == 2)
    start, end = sink.of(proc.pid)
    assert (start.type, end.type) == ("start", "end")
    assert start.process.executable == os.path.realpath("/bin/sleep")
    assert list(start.process.args) == ["/bin/sleep", "2"]
    assert start.process.ppid == os.getpid()
    assert end.outcome == events_pb2.OUTCOME_UNKNOWN
