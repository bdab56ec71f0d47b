"""JournaldAuthSource against real journal files written by systemd-journal-remote and read by
the real journalctl, including entries appended while it follows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.sources.journald.config import JournaldConfig
from agent.sources.journald.source import CHECKPOINT_KEY, JournaldAuthSource
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CollectingSink, context, running, wait_until
from tests.agent.sources.journald.journals import (
    T0_US,
    cursors,
    entry,
    needs_journal_tools,
    write_journal,
)

pytestmark = [needs_journal_tools, pytest.mark.integration]

T0_ISO = datetime.fromtimestamp(T0_US // 1_000_000, UTC).isoformat()

FAILED = "Failed password for invalid user admin from 45.33.32.156 port 39214 ssh2"
ACCEPTED = "Accepted publickey for deploy from 198.51.100.7 port 40022 ssh2: ED25519 SHA256:abc"
SUDO = "    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update"
USERADD = "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0"
# Not UTF-8: journalctl prints this MESSAGE as an array of byte values.
NOT_UTF8 = b"Failed password for invalid user b\xffd from 10.0.0.9 port 22 ssh2"


def config(*files: Path, **kw: object) -> JournaldConfig:
    return JournaldConfig.model_validate(
        {"files": [str(f) for f in files], "read_from": "beginning", "batch_delay_ms": 20, **kw}
    )


def failures(n: int, start: int) -> list[dict[str, str | bytes]]:
    return [
        entry(start + i, "sshd", f"Failed password for root from 45.33.32.{i} port 22 ssh2")
        for i in range(n)
    ]


async def test_typed_events_from_a_real_journal(tmp_path: Path) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(
        journal,
        [
            entry(0, "sshd", FAILED),
            entry(1, "sshd", ACCEPTED, SYSLOG_FACILITY="4"),
            entry(2, "sudo", SUDO, _PID="", SYSLOG_PID="4321"),
            # Selected by _COMM alone: no syslog identifier, no facility.
            entry(3, "useradd", USERADD, SYSLOG_IDENTIFIER="", SYSLOG_FACILITY=""),
            entry(4, "sshd", NOT_UTF8),
            # authpriv, but a program without a parser: read and counted as not_auth.
            entry(5, "CRON", "pam_unix(cron:session): session opened for user root(uid=0)"),
            # Neither an auth facility nor an auth program: journalctl leaves it out.
            entry(6, "systemd", "Started session-1.scope.", SYSLOG_FACILITY="3"),
            entry(7, "sshd", "Server listening on 0.0.0.0 port 22."),
        ],
    )
    sink = CollectingSink()
    source = JournaldAuthSource(config(journal))
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 5)
        await wait_until(lambda: sink.checkpoints.get(CHECKPOINT_KEY) == cursors(journal)[-1])
        assert source.health.state == "running"
    failed, accepted, sudo, useradd, not_utf8 = sink.events
    assert (failed.category, failed.type, failed.action, failed.outcome) == (
        "authentication",
        "start",
        "ssh_login",
        events_pb2.OUTCOME_FAILURE,
    )
    assert (failed.auth.user, failed.auth.source_ip, failed.auth.user_invalid) == (
        "admin",
        "45.33.32.156",
        True,
    )
    assert (failed.auth.process_name, failed.auth.process_pid) == ("sshd", 1000)
    assert failed.time_ns == T0_US * 1000
    assert (failed.host, failed.agent_id, failed.source) == ("web1", "agent-1", "journald")
    assert failed.original == f"{T0_ISO} web1 sshd[1000]: {FAILED}"
    assert (accepted.outcome, accepted.auth.user, accepted.auth.method) == (
        events_pb2.OUTCOME_SUCCESS,
        "deploy",
        "publickey",
    )
    assert (sudo.action, sudo.auth.user, sudo.auth.target_user) == ("sudo_command", "alice", "root")
    assert (sudo.auth.command, sudo.auth.process_pid) == ("/usr/bin/apt update", 4321)
    assert (useradd.action, useradd.auth.user, useradd.auth.uid) == ("user_created", "bob", 1001)
    assert useradd.auth.process_name == "useradd"
    assert not_utf8.auth.user == "b\ufffdd"
    assert not_utf8.auth.source_ip == "10.0.0.9"
    assert source.health.events == 5
    assert source.health.unparsed == {"not_auth": 1, "ignored_sshd": 1}


async def test_resumes_after_the_saved_cursor_with_nothing_resent_or_skipped(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(journal, failures(3, 0))
    first = CollectingSink()
    async with running(JournaldAuthSource(config(journal)), first):
        await wait_until(lambda: len(first.events) == 3)
        await wait_until(lambda: first.checkpoints.get(CHECKPOINT_KEY) == cursors(journal)[2])
    # More than ten: `journalctl --follow --after-cursor` alone would show only ten of them.
    write_journal(journal, failures(12, 3))
    second = CollectingSink()
    source = JournaldAuthSource(config(journal))
    async with running(source, second, context(dict(first.checkpoints))):
        await wait_until(lambda: len(second.events) == 12)
        write_journal(journal, failures(1, 15))  # appended while journalctl follows
        await wait_until(lambda: len(second.events) == 13)
        await wait_until(lambda: second.checkpoints[CHECKPOINT_KEY] == cursors(journal)[-1])
    assert [e.auth.source_ip for e in second.events] == [f"45.33.32.{i}" for i in range(12)] + [
        "45.33.32.0"
    ]
    assert [e.time_ns for e in second.events] == [
        (T0_US + s * 1_000_000) * 1000 for s in range(3, 16)
    ]
    assert source.health.unparsed == {}


async def test_entries_of_an_earlier_boot_are_not_skipped(tmp_path: Path) -> None:
    # `journalctl --follow` alone shows only the latest boot: the agent stopped, the host
    # logged more and rebooted, and those last entries of the old boot must still come.
    journal = tmp_path / "auth.journal"
    old, new = "a" * 32, "b" * 32
    write_journal(
        journal,
        [
            {**e, "_BOOT_ID": boot}
            for e, boot in zip(failures(4, 0), (old, old, old, new), strict=True)
        ],
    )
    sink = CollectingSink()
    saved = {CHECKPOINT_KEY: cursors(journal)[0]}
    async with running(JournaldAuthSource(config(journal)), sink, context(saved)):
        await wait_until(lambda: len(sink.events) == 3)
    assert [e.auth.source_ip for e in sink.events] == ["45.33.32.1", "45.33.32.2", "45.33.32.3"]


async def test_read_from_end_skips_history(tmp_path: Path) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(journal, failures(2, 0))
    sink = CollectingSink()
    source = JournaldAuthSource(config(journal, read_from="end"))
    async with running(source, sink):
        # Nothing tells when journalctl is following: append until an event arrives.
        loop = asyncio.get_running_loop()
        deadline, seq = loop.time() + 10, 2
        while not sink.events and loop.time() < deadline:
            write_journal(journal, failures(1, seq))
            seq += 1
            pause = loop.time() + 0.3
            while not sink.events and loop.time() < pause:
                await asyncio.sleep(0.02)
    assert sink.events
    assert all(e.time_ns >= (T0_US + 2_000_000) * 1000 for e in sink.events)


async def test_chunks_of_at_most_500_with_the_cursor_they_reach(tmp_path: Path) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(journal, failures(1200, 0))
    sink = CollectingSink()
    # A long batch delay, so that only the 500 cap ends a chunk before the last, partial one
    # (with a short delay, a busy machine flushes smaller chunks first: correct, but then the
    # cap would go untested).
    async with running(JournaldAuthSource(config(journal, batch_delay_ms=5_000)), sink):
        await wait_until(lambda: len(sink.events) == 1200, timeout=30)
        await wait_until(lambda: sink.checkpoints.get(CHECKPOINT_KEY) == cursors(journal)[-1])
    assert sink.batch_sizes == [500, 500, 200]


async def test_directory_with_two_files(tmp_path: Path) -> None:
    write_journal(tmp_path / "a.journal", failures(2, 0))
    write_journal(tmp_path / "b.journal", failures(2, 2))
    sink = CollectingSink()
    cfg = JournaldConfig(directory=str(tmp_path), read_from="beginning", batch_delay_ms=20)
    async with running(JournaldAuthSource(cfg), sink):
        await wait_until(lambda: len(sink.events) == 4)
    assert [e.time_ns for e in sink.events] == sorted(e.time_ns for e in sink.events)


async def test_no_journal_files_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cfg = JournaldConfig(directory=str(tmp_path / "empty"))
    source = JournaldAuthSource(cfg)
    with pytest.raises(SourceUnavailableError, match=r"no journal files in .*empty"):
        await source.run(context(), CollectingSink(), _never())
    assert source.health.state == "unavailable"
    system = JournaldAuthSource(system_roots=[tmp_path / "var", tmp_path / "run"])
    with pytest.raises(SourceUnavailableError, match="use the authlog source"):
        await system.run(context(), CollectingSink(), _never())
    missing = JournaldAuthSource(config(tmp_path / "gone.journal"))
    with pytest.raises(SourceUnavailableError, match=r"gone\.journal not found"):
        await missing.run(context(), CollectingSink(), _never())


@pytest.mark.parametrize("name", ["/nonexistent/bin/journalctl", "no-such-journalctl-xyz"])
async def test_missing_journalctl_is_unavailable(tmp_path: Path, name: str) -> None:
    journal = tmp_path / "auth.journal"
    write_journal(journal, failures(1, 0))
    source = JournaldAuthSource(config(journal, journalctl=name))
    with pytest.raises(
        SourceUnavailableError,
        match="journalctl not found: install systemd or disable the journald source",
    ):
        await source.run(context(), CollectingSink(), _never())
    assert "journalctl not found" in source.health.detail


def _never() -> asyncio.Event:
    return asyncio.Event()


async def test_the_system_journal_of_this_host() -> None:
    """Default config against this host: follows the system journal when journald keeps one,
    else says plainly that there is none (this test machine runs no journald)."""
    roots = [Path("/var/log/journal"), Path("/run/log/journal")]
    has_journal = any(f for r in roots for p in ("*.journal", "*/*.journal") for f in r.glob(p))
    source = JournaldAuthSource(JournaldConfig())
    if not has_journal:
        with pytest.raises(SourceUnavailableError, match="no journal files in /var/log/journal"):
            await source.run(context(), CollectingSink(), _never())
        return
    async with running(source, CollectingSink()):
        await wait_until(lambda: source.health.state == "running")
    assert "journalctl_restart" not in source.health.unparsed
