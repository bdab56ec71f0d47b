"""SyslogSource running on the event loop against real files written and rotated while it runs."""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from agent.config import SourcesConfig
from agent.sources.syslog import SyslogConfig, SyslogSource
from canhgac.strictmodel import ValidationError
from tests.agent.sources.harness import CollectingSink, context, running, wait_until

CRON = "Nov 22 12:{:02d}:01 web1 CRON[{}]: (root) CMD (/usr/local/bin/backup.sh)"
KERNEL = "Nov 22 12:00:02 web1 kernel: [ 8.123456] e1000e: eth0 NIC Link is Up"
SSHD = "Nov 22 12:00:03 web1 sshd[77]: Failed password for root from 203.0.113.1 port 5 ssh2"


def config(*paths: Path, **kw: Any) -> SyslogConfig:
    return SyslogConfig.model_validate(
        {"paths": [str(p) for p in paths], "poll_interval_ms": 10, "read_from": "beginning", **kw}
    )


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


async def test_allowed_programs_become_events_others_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    append(log, CRON.format(0, 100), KERNEL, SSHD, "not a syslog line")
    sink = CollectingSink()
    source = SyslogSource(config(log), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 1)
        await wait_until(lambda: sum(source.health.unparsed.values()) == 3)
        assert source.health.state == "running"
    assert source.health.unparsed == {
        "program_not_selected": 1,
        "read_by_authlog": 1,
        "not_syslog": 1,
    }
    assert source.health.events == 1
    (event,) = sink.events
    assert (event.source, event.log.program, event.log.pid) == ("syslog", "CRON", 100)
    assert event.log.fields["command"] == "/usr/local/bin/backup.sh"
    assert set(sink.checkpoints) == {f"syslog:{log}"}


async def test_rotation_truncation_and_restart_lose_and_repeat_nothing(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    append(log, *(CRON.format(i, i) for i in range(3)))
    sink = CollectingSink()
    source = SyslogSource(config(log), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 3)
        # logrotate: rename, the daemon still writes to the old file, then to a new one
        os.rename(log, tmp_path / "syslog.1")
        append(tmp_path / "syslog.1", CRON.format(3, 3))
        append(log, CRON.format(4, 4))
        await wait_until(lambda: len(sink.events) == 5)
    # written while the agent is stopped, including half a line
    append(log, CRON.format(5, 5))
    with log.open("a") as f:
        f.write(CRON.format(6, 6)[:25])
    source = SyslogSource(config(log), tz=UTC)
    async with running(source, sink, context(dict(sink.checkpoints))):
        await wait_until(lambda: len(sink.events) == 6)
        with log.open("a") as f:
            f.write(CRON.format(6, 6)[25:] + "\n")
        await wait_until(lambda: len(sink.events) == 7)
        # copy-truncate
        os.truncate(log, 0)
        append(log, CRON.format(7, 7))
        await wait_until(lambda: len(sink.events) == 8)
    assert [e.log.pid for e in sink.events] == list(range(8))


async def test_own_format_files_and_missing_syslog_paths(tmp_path: Path) -> None:
    missing = tmp_path / "messages"
    vsftpd_log, clamav_log = tmp_path / "vsftpd.log", tmp_path / "clamav.log"
    append(
        vsftpd_log,
        'Sun Nov 22 10:02:33 2026 [pid 1822] [ketoan] FAIL LOGIN: Client "198.51.100.23"',
        "garbage",
    )
    append(clamav_log, "Sun Nov 22 11:20:45 2026 -> /tmp/x: Unix.Trojan.Agent-1 FOUND")
    files = [
        {"path": str(vsftpd_log), "format": "vsftpd"},
        {"path": str(clamav_log), "format": "clamav"},
    ]
    sink = CollectingSink()
    source = SyslogSource(config(missing, files=files), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 2)
        await wait_until(lambda: source.health.unparsed.get("not_vsftpd") == 1)
        assert source.health.state == "running"
    by_format = {e.log.format: e for e in sink.events}
    assert by_format["vsftpd"].log.fields["client"] == "198.51.100.23"
    assert by_format["clamav"].log.program == "clamd"
    assert by_format["clamav"].log.fields["signature"] == "Unix.Trojan.Agent-1"


async def test_unavailable_while_no_file_exists(tmp_path: Path) -> None:
    syslog, messages = tmp_path / "syslog", tmp_path / "messages"
    sink = CollectingSink()
    source = SyslogSource(config(syslog, messages), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
        assert source.health.detail == f"{syslog}: not found; {messages}: not found"
        append(messages, CRON.format(1, 1))
        await wait_until(lambda: len(sink.events) == 1)
        assert source.health.state == "running"


async def test_read_from_end_skips_history(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    append(log, CRON.format(0, 1))
    sink = CollectingSink()
    source = SyslogSource(config(log, read_from="end"), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "running")
        append(log, CRON.format(1, 2))
        await wait_until(lambda: len(sink.events) == 1)
    assert sink.events[0].log.pid == 2


def test_defaults_and_validation() -> None:
    default = SourcesConfig().syslog
    assert default is not None  # on by default
    assert default.paths == ["/var/log/syslog", "/var/log/messages"]
    assert default.read_from == "end"
    assert {"cron", "vsftpd", "clamd", "guacd", "named", "systemd"} <= set(default.programs)
    bad_configs: list[dict[str, Any]] = [
        {"paths": ["var/log/syslog"]},
        {"paths": ["/a"], "files": [{"path": "/a"}]},
        {"paths": [], "files": []},
        {"programs": ["bad name"]},
        {"programs": []},
        {"files": [{"path": "/var/log/x", "format": "json"}]},
    ]
    for bad in bad_configs:
        with pytest.raises(ValidationError):
            SyslogConfig.model_validate(bad)


async def test_a_line_the_parser_fails_on_is_counted_and_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.sources.syslog import parser as syslog_parser

    real = syslog_parser.SyslogLineParser.parse

    def parse(self: syslog_parser.SyslogLineParser, line: str) -> object:
        if "poison" in line:
            raise IndexError("a parser bug")
        return real(self, line)

    monkeypatch.setattr(syslog_parser.SyslogLineParser, "parse", parse)
    log = tmp_path / "syslog"
    append(log, CRON.format(0, 1), "Nov 22 12:00:05 web1 CRON[2]: poison", CRON.format(1, 3))
    sink = CollectingSink()
    source = SyslogSource(config(log), tz=UTC)
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 2)
        assert source.health.unparsed == {"parser_error": 1}
    # The checkpoint is past the line: a restart does not fail on it again.
    assert json.loads(sink.checkpoints[f"syslog:{log}"])["offset"] == log.stat().st_size
