"""AuditdSource against a real audit.log the test writes, rotates and truncates."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from agent.config import SourcesConfig
from agent.sources.auditd import AuditdConfig, AuditdSource
from agent.sources.tailer import open_readonly
from canhgac.strictmodel import ValidationError
from tests.agent.sources.harness import CollectingSink, context, running, wait_until

from . import records as r


def config(path: Path, **kw: object) -> AuditdConfig:
    return AuditdConfig.model_validate({"path": str(path), "poll_interval_ms": 10, **kw})


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def serials(sink: CollectingSink) -> list[str]:
    return [e.log.fields["serial"] for e in sink.events]


def test_config_defaults_and_validation() -> None:
    default = AuditdConfig()
    assert default.path == "/var/log/audit/audit.log"
    assert default.read_from == "beginning"
    assert isinstance(SourcesConfig().auditd, AuditdConfig)  # on by default
    with pytest.raises(ValidationError):
        AuditdConfig.model_validate({"path": "audit.log"})
    with pytest.raises(ValidationError):
        AuditdConfig.model_validate({"path": "/x", "poll_interval_ms": 1})


async def test_unavailable_until_the_file_appears_then_follows_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    sink = CollectingSink()
    source = AuditdSource(config(log))
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
        assert source.health.detail.startswith(f"{log}: not found")
        append(log, r.SYSCALL_OPEN_SHADOW, r.PATH_SHADOW)
        await wait_until(lambda: len(sink.events) == 2)
        assert source.health.state == "running"
        # auditd's own rotation: audit.log -> audit.log.1, a new audit.log.
        os.rename(log, tmp_path / "audit.log.1")
        append(tmp_path / "audit.log.1", r.SERVICE_STOP)
        append(log, r.CONFIG_CHANGE)
        await wait_until(lambda: len(sink.events) == 4)
        # Truncation (a copy-truncate rotation): read again from the start.
        with log.open("w") as f:
            f.write(r.DAEMON_END + "\n")
        await wait_until(lambda: len(sink.events) == 5)
    assert serials(sink) == ["8811", "8811", "9001", "9300", "9400"]
    assert [e.log.name for e in sink.events] == [
        "SYSCALL",
        "PATH",
        "SERVICE_STOP",
        "CONFIG_CHANGE",
        "DAEMON_END",
    ]
    assert source.health.events == 5
    assert set(sink.checkpoints) == {f"auditd:{log}"}


async def test_restart_resumes_from_the_checkpoint_without_repeating(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, r.SYSCALL_OPEN_SHADOW, r.PATH_SHADOW)
    sink = CollectingSink()
    async with running(AuditdSource(config(log)), sink):
        await wait_until(lambda: len(sink.events) == 2)
    append(log, r.SERVICE_STOP)
    second = CollectingSink()
    async with running(AuditdSource(config(log)), second, context(dict(sink.checkpoints))):
        await wait_until(lambda: len(second.events) == 1)
        append(log, r.CONFIG_CHANGE)
        await wait_until(lambda: len(second.events) == 2)
    assert serials(second) == ["9001", "9300"]


async def test_bad_lines_are_counted_by_reason_and_never_stop_the_source(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "", "not an audit record", r.UNTERMINATED, "x" * 600, r.PATH_SHADOW)
    sink = CollectingSink()
    source = AuditdSource(config(log, max_line_bytes=512))
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 2)
        await wait_until(lambda: source.health.unparsed.get("not_audit_record") == 2)
    assert source.health.unparsed == {
        "empty_line": 1,
        "not_audit_record": 2,
        "unterminated_quote": 1,
        "line_truncated": 1,
    }
    assert [e.log.name for e in sink.events] == ["USER_CMD", "PATH"]


async def test_read_from_end_skips_the_history(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, r.SYSCALL_OPEN_SHADOW)
    sink = CollectingSink()
    source = AuditdSource(config(log, read_from="end"))
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "running")
        append(log, r.SERVICE_STOP)
        await wait_until(lambda: len(sink.events) == 1)
    assert serials(sink) == ["9001"]


async def test_unreadable_file_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, r.PATH_SHADOW)
    allow = False

    # Root reads a mode-0600 file of anyone, so the kernel's refusal is injected here.
    def opener(path: str) -> int:
        if not allow:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return open_readonly(path)

    sink = CollectingSink()
    source = AuditdSource(config(log), opener=opener, retry_interval=0.01)
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
        assert "permission denied" in source.health.detail
        assert "log_group" in source.health.detail
        allow = True
        await wait_until(lambda: len(sink.events) == 1)
        assert source.health.state == "running"
