"""The inotify record parser on hand-built bytes, and the ctypes binding on the real kernel."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent.sources.fim.inotify import (
    IN_CREATE,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Inotify,
    InotifyEvent,
    parse_events,
)


def record(wd: int, mask: int, cookie: int, name: bytes, pad_to: int = 16) -> bytes:
    length = 0 if not name else -(-(len(name) + 1) // pad_to) * pad_to
    return struct.pack("iIII", wd, mask, cookie, length) + name.ljust(length, b"\0")


def test_parses_several_records_with_padded_names() -> None:
    buf = (
        record(1, IN_MOVED_FROM, 7, b"old")
        + record(1, IN_MOVED_TO, 7, b"a-name-longer-than-16")
        + record(-1, IN_Q_OVERFLOW, 0, b"")
        + record(2, IN_CREATE | IN_ISDIR, 0, b"sub")
    )
    assert parse_events(buf) == [
        InotifyEvent(1, IN_MOVED_FROM, 7, "old"),
        InotifyEvent(1, IN_MOVED_TO, 7, "a-name-longer-than-16"),
        InotifyEvent(-1, IN_Q_OVERFLOW, 0, ""),
        InotifyEvent(2, IN_CREATE | IN_ISDIR, 0, "sub"),
    ]
    assert parse_events(buf)[3].is_dir


def test_non_utf8_names_round_trip() -> None:
    (ev,) = parse_events(record(3, IN_CREATE, 0, b"caf\xe9"))
    assert ev.name.encode("utf-8", "surrogateescape") == b"caf\xe9"


@pytest.mark.parametrize("cut", [1, 10, 20])
def test_truncated_buffer_is_rejected(cut: int) -> None:
    buf = record(1, IN_CREATE, 0, b"name")
    with pytest.raises(ValueError, match="truncated"):
        parse_events(buf[:-cut] if cut < len(buf) else buf[:cut])


def test_empty_buffer() -> None:
    assert parse_events(b"") == []


def test_real_inotify_reports_a_created_file(tmp_path: Path) -> None:
    ino = Inotify()
    try:
        wd = ino.add_watch(str(tmp_path))
        assert ino.read() == []  # non-blocking: nothing queued yet
        (tmp_path / "x").write_text("1")
        events = ino.read()
        assert InotifyEvent(wd, IN_CREATE, 0, "x") in events
        with pytest.raises(OSError, match="No such file"):
            ino.add_watch(str(tmp_path / "missing"))
    finally:
        ino.close()
