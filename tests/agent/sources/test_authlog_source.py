"""AuthLogSource running on the event loop against real files written while it runs."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from agent.sources.authlog import AuthLogConfig, AuthLogSource
from agent.sources.tailer import open_readonly
from canhgac.strictmodel import ValidationError
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CLOCK_NS, CollectingSink, context, running, wait_until

FAILED = (
    "Nov 22 12:27:{:02d} web1 sshd[{}]: Failed password for root from 45.33.32.156 port 22 ssh2"
)


def config(*paths: Path, **kw: object) -> AuthLogConfig:
    return AuthLogConfig.model_validate(
        {"paths": [str(p) for p in paths], "poll_interval_ms": 10, **kw}
    )


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


async def test_emits_events_for_lines_written_while_running(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, FAILED.format(1, 100))
    sink = CollectingSink()
    source = AuthLogSource(config(log), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 1)
        append(log, FAILED.format(2, 101), "Nov 22 12:27:03 web1 CRON[5]: not auth")
        append(
            log, "Nov 22 12:27:04 web1 sshd[102]: Accepted password for bob from ::1 port 5 ssh2"
        )
        await wait_until(lambda: len(sink.events) == 3)
        await wait_until(lambda: source.health.unparsed.get("not_auth") == 1)
        assert source.health.state == "running"
        assert source.health.events == 3
    first, _, third = sink.events
    assert (first.action, first.outcome) == ("ssh_login", events_pb2.OUTCOME_FAILURE)
    assert first.agent_id == "agent-1"
    assert first.host == "web1"
    assert first.source == "authlog"
    assert first.created_ns == CLOCK_NS
    assert first.original == FAILED.format(1, 100)
    assert (third.auth.user, third.auth.source_ip) == ("bob", "::1")
    assert set(sink.checkpoints) == {f"authlog:{log}"}


async def test_resumes_from_checkpoint_without_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, *(FAILED.format(i, 200 + i) for i in range(3)))
    sink = CollectingSink()
    async with running(AuthLogSource(config(log), tz=UTC), sink):
        await wait_until(lambda: len(sink.events) == 3)
    # Written while the agent is down, including a line still being written.
    append(log, *(FAILED.format(i, 200 + i) for i in range(3, 5)))
    with log.open("a") as f:
        f.write(FAILED.format(5, 205)[:30])
    async with running(AuthLogSource(config(log), tz=UTC), sink, context(dict(sink.checkpoints))):
        await wait_until(lambda: len(sink.events) == 5)
        with log.open("a") as f:
            f.write(FAILED.format(5, 205)[30:] + "\n")
        await wait_until(lambda: len(sink.events) == 6)
    pids = [e.auth.process_pid for e in sink.events]
    assert pids == [200, 201, 202, 203, 204, 205]


async def test_large_backlog_is_emitted_in_chunks_with_a_checkpoint_each(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, *(FAILED.format(i % 60, 1000 + i) for i in range(1203)))
    sink = CollectingSink()
    async with running(AuthLogSource(config(log), tz=UTC), sink):
        await wait_until(lambda: len(sink.events) == 1203)
    assert max(sink.batch_sizes) <= 500
    assert sum(sink.batch_sizes) == 1203
    position = json.loads(sink.checkpoints[f"authlog:{log}"])
    assert position["offset"] == log.stat().st_size


async def test_follows_rotation_and_a_path_that_appears_later(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    sink = CollectingSink()
    source = AuthLogSource(config(log), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
        assert source.health.detail == f"{log}: not found"
        append(log, FAILED.format(1, 1))
        await wait_until(lambda: len(sink.events) == 1)
        assert source.health.state == "running"
        os.rename(log, tmp_path / "auth.log.1")
        append(tmp_path / "auth.log.1", FAILED.format(2, 2))
        append(log, FAILED.format(3, 3))
        await wait_until(lambda: len(sink.events) == 3)
    assert [e.auth.process_pid for e in sink.events] == [1, 2, 3]


async def test_unreadable_path_is_reported_and_the_others_keep_running(tmp_path: Path) -> None:
    readable, denied = tmp_path / "auth.log", tmp_path / "secure"
    append(readable, FAILED.format(1, 1))
    append(denied, FAILED.format(2, 2))
    allow = False

    # Root reads a mode-000 file, so the kernel's refusal is injected here; the real check is
    # exercised by test_permission_denied_by_the_kernel below.
    def opener(path: str) -> int:
        if path == str(denied) and not allow:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return open_readonly(path)

    sink = CollectingSink()
    source = AuthLogSource(config(readable, denied), tz=UTC, opener=opener, retry_interval=0.05)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 1 and source.health.detail != "")
        assert source.health.state == "running"
        assert source.health.detail == (
            f"{denied}: permission denied (run as root or add the agent user to group adm)"
        )
        allow = True
        await wait_until(lambda: len(sink.events) == 2)
        await wait_until(lambda: source.health.detail == "")
    assert sorted(e.auth.process_pid for e in sink.events) == [1, 2]


async def test_unavailable_when_no_path_is_readable(tmp_path: Path) -> None:
    denied, missing = tmp_path / "auth.log", tmp_path / "secure"
    append(denied, FAILED.format(1, 1))

    def opener(path: str) -> int:
        if path == str(denied):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return open_readonly(path)

    source = AuthLogSource(config(denied, missing), opener=opener)
    async with running(source, CollectingSink()):
        await wait_until(lambda: source.health.state == "unavailable")
    assert source.health.detail == (
        f"{denied}: permission denied (run as root or add the agent user to group adm); "
        f"{missing}: not found"
    )


def _permission_scenario(directory: Path) -> dict[str, object]:
    readable, denied = directory / "auth.log", directory / "secure"
    append(readable, FAILED.format(1, 1))
    append(denied, FAILED.format(2, 2))
    denied.chmod(0)

    async def scenario() -> dict[str, object]:
        sink = CollectingSink()
        source = AuthLogSource(config(readable, denied), tz=UTC)
        async with running(source, sink):
            await wait_until(lambda: len(sink.events) == 1 and source.health.detail != "")
        return {"state": source.health.state, "detail": source.health.detail, "events": 1}

    return asyncio.run(scenario())


def _as_nobody(work: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run `work` in a forked child that dropped root, so the kernel really denies access."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            report = work()
            code = 0
        except BaseException as exc:  # noqa: BLE001  # anything must reach the parent
            report = {"error": repr(exc)}
        os.write(write_end, json.dumps(report).encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(output or b"{}")
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_permission_denied_by_the_kernel() -> None:
    directory = Path(tempfile.mkdtemp(prefix="canhgac-authlog-"))
    try:
        if os.geteuid() == 0:
            directory.chmod(0o777)  # the unprivileged child writes its files here
            result = _as_nobody(lambda: _permission_scenario(directory))
        else:
            result = _permission_scenario(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert result == {
        "state": "running",
        "detail": f"{directory / 'secure'}: permission denied "
        "(run as root or add the agent user to group adm)",
        "events": 1,
    }


async def test_counts_truncated_lines_and_bad_checkpoints(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, FAILED.format(1, 1) + " " + "x" * 400, FAILED.format(2, 2))
    sink = CollectingSink()
    source = AuthLogSource(config(log, max_line_bytes=256), tz=UTC)
    ctx = context({f"authlog:{log}": "not json"})
    async with running(source, sink, ctx):
        await wait_until(lambda: len(sink.events) == 1)
        await wait_until(lambda: source.health.unparsed.get("unrecognised_sshd") == 1)
    assert source.health.unparsed["line_truncated"] == 1
    assert source.health.unparsed["bad_checkpoint"] == 1


def test_config_defaults_and_validation() -> None:
    cfg = AuthLogConfig()
    assert cfg.paths == ["/var/log/auth.log", "/var/log/secure"]
    assert cfg.poll_interval_ms == 250
    assert cfg.max_line_bytes == 64 * 1024
    bad_configs: list[dict[str, object]] = [
        {"poll_interval_ms": 5},
        {"poll_interval_ms": 10_001},
        {"paths": []},
        {"paths": ["relative.log"]},
        {"paths": ["/a", "/a"]},
        {"unknown": 1},
    ]
    for bad in bad_configs:
        with pytest.raises(ValidationError):
            AuthLogConfig.model_validate(bad)
