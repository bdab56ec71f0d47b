"""Real journal files for tests, written by systemd-journal-remote from Journal Export Format."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
JOURNALCTL = shutil.which("journalctl")
BOOT_ID = "0123456789abcdef0123456789abcdef"
T0_US = 1_795_350_000_000_000  # 2026-11-22T12:20:00Z, µs

# Tests that write real journal files and read them with journalctl (fixture in conftest.py).
needs_journal_tools = pytest.mark.usefixtures("journal_tools")

Fields = Mapping[str, str | bytes]


def entry(seq: int, program: str, message: str | bytes, **extra: str) -> dict[str, str | bytes]:
    """An auth entry as journald stores one from a program logging through syslog(3)."""
    fields: dict[str, str | bytes] = {
        "__REALTIME_TIMESTAMP": str(T0_US + seq * 1_000_000),
        "__MONOTONIC_TIMESTAMP": str(1_000 + seq * 1_000_000),
        "_BOOT_ID": BOOT_ID,
        "_HOSTNAME": "web1",
        "SYSLOG_FACILITY": "10",
        "SYSLOG_IDENTIFIER": program,
        "_COMM": program,
        "_PID": str(1000 + seq),
        "MESSAGE": message,
    }
    fields.update(extra)
    return {k: v for k, v in fields.items() if v != ""}


def export_format(entries: Sequence[Fields]) -> bytes:
    """Journal Export Format: `FIELD=value` lines, binary values length-prefixed."""
    out = bytearray()
    for fields in entries:
        for name, value in fields.items():
            raw = value.encode() if isinstance(value, str) else value
            if b"\n" in raw or isinstance(value, bytes):
                out += name.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
            else:
                out += name.encode() + b"=" + raw + b"\n"
        out += b"\n"
    return bytes(out)


def write_journal(path: Path, entries: Sequence[Fields]) -> None:
    """Append entries to the journal file at `path` (created when missing)."""
    subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}", "-"],
        input=export_format(entries),
        check=True,
        capture_output=True,
        timeout=30,
    )


def cursors(path: Path) -> list[str]:
    """The cursor of every entry in the file, in order, as journalctl reports them."""
    assert JOURNALCTL is not None
    out = subprocess.run(
        [JOURNALCTL, f"--file={path}", "--output=export", "--output-fields=MESSAGE"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return [
        line.split(b"=", 1)[1].decode()
        for line in out.splitlines()
        if line.startswith(b"__CURSOR=")
    ]
