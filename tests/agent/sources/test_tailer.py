"""FileTailer on real files: each rotation case, restart, limits. poll() is called directly."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import threading
from pathlib import Path

import pytest

from agent.sources.tailer import FileTailer, TailPosition, idle_interval, open_readonly


def append(path: Path, data: str | bytes) -> None:
    with path.open("ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def drain(tailer: FileTailer, polls: int = 5) -> list[str]:
    """Poll a few times (a rotation takes one extra poll when the old file was just written)."""
    out: list[str] = []
    for _ in range(polls):
        out += tailer.poll().lines
    return out


def state(tailer: FileTailer) -> str:
    # Through a call, so that mypy does not narrow the state across poll() calls.
    return tailer.status.state


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "auth.log"


def test_missing_path_then_appears(log: Path) -> None:
    tailer = FileTailer(str(log))
    assert tailer.poll() == ([], None)
    assert state(tailer) == "missing"
    append(log, "one\ntwo\n")
    lines, position = tailer.poll()
    assert lines == ["one", "two"]
    assert state(tailer) == "open"
    assert position is not None
    assert position.offset == 8
    assert position.inode == log.stat().st_ino


def test_partial_line_is_held_until_completed(log: Path) -> None:
    append(log, "first\nsec")
    tailer = FileTailer(str(log))
    lines, position = tailer.poll()
    assert lines == ["first"]
    assert position is not None
    assert position.offset == 6  # the partial line is not covered by the position
    append(log, "ond\nthi")
    assert tailer.poll().lines == ["second"]
    append(log, "rd\n")
    assert tailer.poll().lines == ["third"]
    assert tailer.poll().lines == []


def test_invalid_utf8_is_replaced(log: Path) -> None:
    append(log, b"ok \xff\xfe end\n")
    assert FileTailer(str(log)).poll().lines == ["ok \ufffd\ufffd end"]


def test_long_line_is_cut_counted_and_the_rest_skipped(log: Path) -> None:
    tailer = FileTailer(str(log), max_line_bytes=8)
    append(log, "short\n" + "x" * 20)
    lines, position = tailer.poll()
    # The over-long line is handed out at once, cut, without waiting for its newline.
    assert lines == ["short", "x" * 8]
    assert tailer.cut_lines == 1
    assert position is not None
    assert position.discarding
    append(log, "y" * 5 + "\nnext\n" + "z" * 9 + "\n")
    assert tailer.poll().lines == ["next", "z" * 8]
    assert tailer.cut_lines == 2


def test_restart_inside_a_cut_line_skips_its_rest(log: Path) -> None:
    tailer = FileTailer(str(log), max_line_bytes=8)
    append(log, "x" * 20)
    assert tailer.poll().lines == ["x" * 8]
    saved = tailer.position
    tailer.close()
    append(log, "xx\nafter\n")
    resumed = FileTailer(str(log), position=saved, max_line_bytes=8)
    assert resumed.poll().lines == ["after"]


def test_rotation_by_rename_reads_old_file_to_its_end_then_new_from_zero(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    assert tailer.poll().lines == ["a1"]
    # The writer has not reopened yet: it still appends to the renamed file.
    rotated = log.with_name("auth.log.1")
    os.rename(log, rotated)
    append(rotated, "a2\n")
    append(log, "b1\n")
    assert tailer.poll().lines == ["a2"]  # old file first, through the open descriptor
    append(rotated, "a3\n")
    assert tailer.poll().lines == ["a3"]  # still written to: not yet switched
    lines, position = tailer.poll()  # old file quiet: switch
    assert lines == ["b1"]
    assert position is not None
    assert position.inode == log.stat().st_ino
    assert position.offset == 3


def test_rotation_with_a_quiet_old_file_switches_in_the_same_poll(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    os.rename(log, log.with_name("auth.log.1"))
    append(log, "b1\n")
    assert tailer.poll().lines == ["b1"]


def test_rotation_drops_a_partial_line_that_can_never_complete(log: Path) -> None:
    append(log, "a1\nhalf")
    tailer = FileTailer(str(log))
    assert tailer.poll().lines == ["a1"]
    os.rename(log, log.with_name("auth.log.1"))
    append(log, "b1\n")
    assert drain(tailer) == ["b1"]
    assert tailer.dropped_partials == 1


def test_rotation_grace_is_bounded_when_the_old_file_never_goes_quiet(log: Path) -> None:
    append(log, "a0\n")
    tailer = FileTailer(str(log), rotation_grace_polls=2)
    tailer.poll()
    rotated = log.with_name("auth.log.1")
    os.rename(log, rotated)
    append(log, "b1\n")
    seen: list[str] = []
    for i in range(1, 6):
        append(rotated, f"a{i}\n")
        seen += tailer.poll().lines
    assert seen[:3] == ["a1", "a2", "a3"]
    assert "b1" in seen
    assert tailer.position is not None
    assert tailer.position.inode == log.stat().st_ino


def test_copy_truncate_restarts_at_zero(log: Path) -> None:
    append(log, "a1\na2\n")
    tailer = FileTailer(str(log))
    assert tailer.poll().lines == ["a1", "a2"]
    shutil.copyfile(log, log.with_name("auth.log.1"))
    os.truncate(log, 0)
    append(log, "b1\n")
    lines, position = tailer.poll()
    assert lines == ["b1"]
    assert position is not None
    assert position.offset == 3


def test_truncation_rewritten_past_the_offset_is_detected_by_the_first_bytes(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    assert tailer.poll().lines == ["a1"]
    with log.open("r+b") as f:  # same inode, same size, new content
        f.truncate(0)
        f.write(b"b1\nb2\n")
    assert tailer.poll().lines == ["b1", "b2"]


def test_truncation_to_the_same_size_is_detected(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    with log.open("r+b") as f:
        f.truncate(0)
        f.write(b"b1\n")
    assert tailer.poll().lines == ["b1"]


def test_delete_and_recreate(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    append(log, "a2\n")
    log.unlink()
    append(log, "b1\n")
    assert drain(tailer) == ["a2", "b1"]


def test_deleted_file_is_let_go_after_the_grace_polls(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log), rotation_grace_polls=3)
    tailer.poll()
    log.unlink()
    for _ in range(3):
        tailer.poll()
        assert state(tailer) == "open"
    tailer.poll()
    assert state(tailer) == "missing"
    append(log, "b1\n")
    assert tailer.poll().lines == ["b1"]


def test_restart_from_saved_position_resumes_exactly(log: Path) -> None:
    append(log, "a1\na2\npart")
    tailer = FileTailer(str(log))
    assert tailer.poll().lines == ["a1", "a2"]
    assert tailer.position is not None
    saved = TailPosition.from_json(tailer.position.to_json())
    tailer.close()
    append(log, "ial\na3\n")
    resumed = FileTailer(str(log), position=saved)
    assert resumed.poll().lines == ["partial", "a3"]


def test_restart_after_rotation_reads_the_new_file_from_zero(log: Path) -> None:
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    saved = tailer.position
    tailer.close()
    os.rename(log, log.with_name("auth.log.1"))
    append(log, "b1\nb2\n")
    assert FileTailer(str(log), position=saved).poll().lines == ["b1", "b2"]


def test_recreated_file_with_the_same_inode_is_recognised_as_new(log: Path) -> None:
    append(log, "old line 1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    saved = tailer.position
    assert saved is not None
    tailer.close()
    # Rewrite in place so the inode number is certainly the same, with more bytes than the
    # saved offset: only the fingerprint can tell this is not the file we were reading.
    log.write_bytes(b"new line 1\nnew line 2\n")
    assert log.stat().st_ino == saved.inode
    assert FileTailer(str(log), position=saved).poll().lines == ["new line 1", "new line 2"]


def test_saved_position_on_another_device_number_still_resumes(log: Path) -> None:
    # Device numbers of LVM volumes may change across a reboot; the fingerprint decides.
    append(log, "a1\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    saved = tailer.position
    assert saved is not None
    moved = TailPosition(
        saved.device + 1, saved.inode, saved.offset, saved.fingerprint, saved.fingerprint_len
    )
    append(log, "a2\n")
    assert FileTailer(str(log), position=moved).poll().lines == ["a2"]


def test_max_lines_chunks_with_a_position_per_chunk(log: Path) -> None:
    append(log, "".join(f"l{i}\n" for i in range(7)))
    tailer = FileTailer(str(log))
    first, position = tailer.poll(max_lines=3)
    assert first == ["l0", "l1", "l2"]
    assert tailer.backlog
    # A crash right after the first chunk resumes at the fourth line.
    assert FileTailer(str(log), position=position).poll(max_lines=10).lines == [
        "l3",
        "l4",
        "l5",
        "l6",
    ]
    assert tailer.poll(max_lines=3).lines == ["l3", "l4", "l5"]
    assert tailer.poll(max_lines=3).lines == ["l6"]
    assert not tailer.backlog


def test_start_at_end_skips_history_but_not_a_later_file(log: Path, tmp_path: Path) -> None:
    append(log, "old\nhalf")
    tailer = FileTailer(str(log), start_at_end=True)
    assert tailer.poll().lines == []
    append(log, " line\nnew\n")
    assert tailer.poll().lines == ["new"]
    later = tmp_path / "later.log"
    tailer2 = FileTailer(str(later), start_at_end=True)
    tailer2.poll()
    append(later, "first\n")
    assert tailer2.poll().lines == ["first"]


def test_position_json_round_trip_and_rejection() -> None:
    pos = TailPosition(1, 2, 300, "ab" * 32, 256, discarding=True)
    assert TailPosition.from_json(pos.to_json()) == pos
    for bad in ("", "[]", '{"v": 2}', '{"v":1,"device":1}', pos.to_json().replace("300", "-1")):
        with pytest.raises(ValueError, match=r"checkpoint|Expecting"):
            TailPosition.from_json(bad)


def test_unreadable_path_is_reported_and_retried(log: Path) -> None:
    # The kernel's own refusal is exercised in test_authlog_source (as an unprivileged child
    # when the tests run as root); here the refusal is injected so it can be lifted.
    append(log, "a1\n")
    denied = True

    def opener(path: str) -> int:
        if denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return open_readonly(path)

    tailer = FileTailer(str(log), opener=opener)
    assert tailer.poll().lines == []
    assert state(tailer) == "unreadable"
    assert tailer.status.detail == "permission denied"
    denied = False
    assert tailer.poll().lines == ["a1"]
    assert state(tailer) == "open"


def test_directory_is_not_followed(tmp_path: Path) -> None:
    tailer = FileTailer(str(tmp_path))
    assert tailer.poll().lines == []
    assert state(tailer) == "unreadable"
    assert tailer.status.detail == "not a regular file"


async def test_follow_runs_file_io_off_the_event_loop(log: Path) -> None:
    append(log, "a1\n")
    release = threading.Event()

    def slow_opener(path: str) -> int:
        release.wait(timeout=10)  # a hung NFS mount, say
        return open_readonly(path)

    tailer = FileTailer(str(log), opener=slow_opener, poll_interval=0.01)
    stop = asyncio.Event()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def first_lines() -> list[str]:
        async for lines, _ in tailer.follow(stop):
            if lines:
                return lines
        return []

    tick_task = asyncio.create_task(ticker())
    follow_task = asyncio.create_task(first_lines())
    for _ in range(1000):  # the loop keeps turning while the opener blocks its thread
        if ticks > 100:
            break
        await asyncio.sleep(0)
    assert ticks > 100
    assert not follow_task.done()
    release.set()
    assert await asyncio.wait_for(follow_task, timeout=10) == ["a1"]
    stop.set()
    await tick_task


def fds_open_on(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                found.append(fd)
        except OSError:
            continue  # closed meanwhile
    return found


async def test_cancelled_follow_closes_the_file_when_its_poll_ends(log: Path) -> None:
    append(log, "a1\n")
    entered, gate = threading.Event(), threading.Event()
    calls = 0

    def opener(path: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # the switch to the rotated-in file
            entered.set()
            gate.wait(timeout=10)
        return open_readonly(path)

    tailer = FileTailer(str(log), opener=opener, poll_interval=0.01)
    tailer.poll()
    os.rename(log, log.with_name("auth.log.1"))
    append(log, "b1\n")
    stop = asyncio.Event()

    async def consume() -> None:
        async for _ in tailer.follow(stop):
            pass

    task = asyncio.create_task(consume())
    for _ in range(1000):
        if entered.is_set():
            break
        await asyncio.sleep(0.01)
    assert entered.is_set()
    task.cancel()  # follow() asks to close while the poll is still running in its thread
    with contextlib.suppress(asyncio.CancelledError):
        await task
    gate.set()
    new_inode = log.stat().st_ino
    for _ in range(1000):
        position = tailer.position
        if position is not None and position.inode == new_inode and not fds_open_on(log):
            break
        await asyncio.sleep(0.01)
    assert tailer.position is not None
    assert tailer.position.inode == new_inode
    assert fds_open_on(log) == []


async def test_a_quiet_file_is_polled_less_often_until_a_line_comes(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls every poll_interval while lines come, every idle_interval once the file has been
    quiet for IDLE_AFTER_S, and at poll_interval again from the first new line."""
    log.write_text("")
    now = [100.0]
    tailer = FileTailer(str(log), poll_interval=0.25, clock=lambda: now[0])
    delays: list[float] = []
    stop = asyncio.Event()
    script = iter([0.5, 1.0, 1.0, 1.0, "line", 0.25, 0.5, 1.0, 1.0, 1.0, "stop"])

    async def wait(_: asyncio.Event, delay: float) -> None:
        delays.append(delay)
        step = next(script)
        if step == "line":
            with log.open("a") as fh:
                fh.write("hello\n")
        elif step == "stop":
            stop.set()
        else:
            assert isinstance(step, float)
            now[0] += step

    monkeypatch.setattr(tailer, "_wait", wait)  # record the delays instead of sleeping
    got = [line async for result in tailer.follow(stop) for line in result.lines]
    assert got == ["hello"]
    idle = idle_interval(0.25)
    assert idle == 1.0
    # Quiet from the start: fast until 2 s have passed, then idle, then fast from the line.
    assert delays == [0.25, 0.25, 0.25, 1.0, idle, 0.25, 0.25, 0.25, 0.25, 1.0, idle]


def test_the_idle_interval_is_never_shorter_than_the_poll_interval() -> None:
    assert idle_interval(0.01) == 0.04  # tests' short intervals stay short
    assert idle_interval(0.25) == 1.0
    assert idle_interval(0.5) == 1.0
    assert idle_interval(1.0) == 1.0
    assert idle_interval(5.0) == 5.0
