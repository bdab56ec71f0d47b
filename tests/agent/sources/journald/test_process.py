"""journalctl misbehaving: overlong and garbled lines, a crash mid-stream, a failing start.

Stand-in `journalctl` programs (small Python scripts) play the misbehaviour; the crash test
wraps the real journalctl so the restart really resumes from the cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path

import pytest

from agent.sources.journald.config import JournaldConfig
from agent.sources.journald.source import JournaldAuthSource
from canhgac.errors import SourceUnavailableError
from tests.agent.sources.harness import CollectingSink, context, running, wait_until
from tests.agent.sources.journald.journals import (
    JOURNALCTL,
    entry,
    needs_journal_tools,
    write_journal,
)

GOOD = json.dumps(
    {
        "__CURSOR": "s=aa;i=1",
        "__REALTIME_TIMESTAMP": "1795350000000000",
        "SYSLOG_IDENTIFIER": "sshd",
        "_PID": "9",
        "MESSAGE": "Failed password for root from 1.2.3.4 port 22 ssh2",
    }
)


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\nimport os, subprocess, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


def config(tmp_path: Path, journalctl: Path, **kw: object) -> JournaldConfig:
    journal = tmp_path / "any.journal"
    if not journal.exists():
        journal.write_bytes(b"")  # the stand-ins never read it; preflight wants it to exist
    return JournaldConfig.model_validate(
        {
            "journalctl": str(journalctl),
            "files": [str(journal)],
            "batch_delay_ms": 20,
            "restart_backoff_ms": 10,
            **kw,
        }
    )


async def test_overlong_and_garbled_lines_are_counted(tmp_path: Path) -> None:
    fake = script(
        tmp_path / "journalctl",
        "out = sys.stdout.buffer\n"
        "out.write(b'{' + b'x' * 200_000 + b'}\\n')\n"  # spans several 64 KiB reads
        "out.write(b'not json\\n')\n"
        f"out.write({GOOD!r}.encode() + b'\\n')\n"
        "out.flush()\n"
        "time.sleep(60)",
    )
    sink = CollectingSink()
    source = JournaldAuthSource(config(tmp_path, fake, max_line_bytes=4096))
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 1)
    assert sink.events[0].auth.source_ip == "1.2.3.4"
    assert source.health.unparsed == {"entry_too_long": 1, "bad_json": 1}
    assert sink.checkpoints == {"journald:cursor": "s=aa;i=1"}


async def test_failing_first_start_is_unavailable_with_its_reason(tmp_path: Path) -> None:
    fake = script(
        tmp_path / "journalctl",
        "sys.stderr.write('Failed to open files: No such file or directory\\n')\nsys.exit(1)",
    )
    source = JournaldAuthSource(config(tmp_path, fake))
    # asyncio sometimes reports an exit status of 255 ("Unknown child process pid"): another
    # waitpid in the test process can reap the child first. The message, not the number, counts.
    with pytest.raises(SourceUnavailableError, match=r"status (1|255): Failed to open files"):
        await source.run(context(), CollectingSink(), asyncio.Event())


@needs_journal_tools
@pytest.mark.integration
async def test_crashed_journalctl_restarts_from_the_last_cursor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(
        journal,
        [
            entry(i, "sshd", f"Failed password for root from 10.0.0.{i} port 22 ssh2")
            for i in range(3)
        ],
    )
    # First run: print two entries without following, complain, die. Later runs: the real one.
    wrapper = script(
        tmp_path / "journalctl",
        f"marker, real = {str(tmp_path / 'ran')!r}, {JOURNALCTL!r}\n"
        "args = sys.argv[1:]\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    once = [a for a in args if a != '--follow']\n"
        "    out = subprocess.run([real, *once], capture_output=True, check=True).stdout\n"
        "    sys.stdout.buffer.write(b''.join(out.splitlines(keepends=True)[:2]))\n"
        "    sys.stderr.write('simulated crash\\n')\n"
        "    sys.exit(3)\n"
        "os.execv(real, [real, *args])",
    )
    sink = CollectingSink()
    source = JournaldAuthSource(
        JournaldConfig(
            journalctl=str(wrapper),
            files=[str(journal)],
            read_from="beginning",
            batch_delay_ms=20,
            restart_backoff_ms=10,
        )
    )
    with caplog.at_level(logging.WARNING, logger="canhgac.agent.journald"):
        async with running(source, sink):
            await wait_until(lambda: len(sink.events) == 3)
            write_journal(
                journal, [entry(3, "sshd", "Failed password for x from 10.0.0.3 port 1 ssh2")]
            )
            await wait_until(lambda: len(sink.events) == 4)
    assert [e.auth.source_ip for e in sink.events] == [f"10.0.0.{i}" for i in range(4)]
    assert source.health.unparsed == {"journalctl_restart": 1}
    assert source.health.state == "running"
    assert any("simulated crash" in r.getMessage() for r in caplog.records)
    # The status is the wrapper's 3, or 255 when asyncio finds the child already reaped (as
    # above); either way the exit is logged with its status.
    assert any(re.search(r"exited with status (3|255)\b", r.getMessage()) for r in caplog.records)


async def test_malformed_checkpoint_is_counted_and_read_from_applies(tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.json"
    fake = script(
        tmp_path / "journalctl",
        f"open({str(argv_file)!r}, 'w').write(repr(sys.argv))\ntime.sleep(60)",
    )
    source = JournaldAuthSource(config(tmp_path, fake, read_from="end"))
    async with running(source, CollectingSink(), context({"journald:cursor": "bad\n--all"})):
        await wait_until(lambda: argv_file.exists() and argv_file.read_text() != "")
    argv = argv_file.read_text()
    assert "--lines=0" in argv
    assert "--after-cursor" not in argv
    assert source.health.unparsed == {"bad_checkpoint": 1}
