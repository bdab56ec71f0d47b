"""Follow one log file by polling, across rotation, truncation and agent restarts.

The core is the synchronous `FileTailer.poll()` step, so tests drive it without sleeping and
the agent runs it in a worker thread (`FileTailer.follow()`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import stat
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from agent.sources.base import SourceHealth

FINGERPRINT_BYTES = 256
DEFAULT_MAX_LINE_BYTES = 64 * 1024
READ_CHUNK_BYTES = 256 * 1024
# How many polls to keep draining a renamed-away file that is still being written to (a syslog
# daemon keeps writing to the old inode until logrotate's postrotate HUP reaches it).
ROTATION_GRACE_POLLS = 20
# A file that has had no new line for IDLE_AFTER_S seconds is polled every
# idle_interval(poll_interval) instead of every poll_interval (see `follow`).
IDLE_AFTER_S = 2.0
IDLE_INTERVAL_MAX_S = 1.0

Opener = Callable[[str], int]
TailState = Literal["starting", "open", "missing", "unreadable", "error"]


def idle_interval(poll_interval: float) -> float:
    """How often a quiet file is polled: four times `poll_interval`, at most 1 s, never more
    often than `poll_interval` itself."""
    return max(poll_interval, min(4 * poll_interval, IDLE_INTERVAL_MAX_S))


def open_readonly(path: str) -> int:
    """Open `path` for reading without blocking on a FIFO and without acquiring a tty."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


@dataclass(frozen=True)
class TailPosition:
    """Where a tailer stands in a file, serialisable as a checkpoint.

    `offset` is just past the last line handed out. `fingerprint` hashes the first
    `fingerprint_len` bytes (at most 256, never past `offset`); a file at the path whose first
    bytes no longer hash the same is a different file, whatever its inode number. `discarding`
    means the tailer is inside an over-long line whose cut prefix was already handed out.
    """

    device: int
    inode: int
    offset: int
    fingerprint: str
    fingerprint_len: int
    discarding: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "device": self.device,
                "inode": self.inode,
                "offset": self.offset,
                "fingerprint": self.fingerprint,
                "fingerprint_len": self.fingerprint_len,
                "discarding": self.discarding,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> TailPosition:
        """Parse a checkpoint value; raises ValueError when it is not one this code wrote."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown checkpoint version")
            pos = cls(
                device=_int(data["device"]),
                inode=_int(data["inode"]),
                offset=_int(data["offset"]),
                fingerprint=str(data["fingerprint"]),
                fingerprint_len=_int(data["fingerprint_len"]),
                discarding=bool(data.get("discarding", False)),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"invalid tail checkpoint: {exc}") from None
        if not 0 <= pos.fingerprint_len <= min(FINGERPRINT_BYTES, pos.offset):
            raise ValueError("invalid tail checkpoint: fingerprint_len out of range")
        return pos


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"expected a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class TailStatus:
    """What the tailer last found at its path; `detail` is for an operator to read."""

    state: TailState
    detail: str = ""


class PollResult(NamedTuple):
    lines: list[str]
    position: TailPosition | None


# A line read and not yet handed out: its text, the file offset just past it (past the cut
# prefix for a cut line), and whether it was cut with the rest still to be skipped. A plain
# tuple: one is made per line read.
_Line = tuple[str, int, bool]


class FileTailer:
    """Follow the file at one path and hand out its complete lines, each exactly once.

    Contract:
    * `poll()` returns the complete lines (decoded UTF-8, invalid bytes replaced, newline
      removed) that appeared since the previous call, at most `max_lines`, and the position
      just past the last of them. Resuming a new tailer from that position (after a crash or
      restart) neither repeats nor skips a line, as long as the file was not replaced meanwhile.
    * A partial last line is held until its newline arrives. A line longer than
      `max_line_bytes` is cut to that length, handed out at once, and counted in `cut_lines`.
    * Rotation by rename: the old file is read to its end through the open descriptor, then
      the tailer switches to the new file from offset 0, on the first poll that finds the old
      file quiet (a syslog daemon writes to it until it is told to reopen), or after
      `rotation_grace_polls` polls at most. A partial line left at the end of the old file can
      never complete and is counted in `dropped_partials`.
    * Copy-truncate and truncation (size below the offset, or the first bytes changed): restart
      at offset 0 of the same file.
    * A missing path is not an error: the tailer reports state "missing" and opens the file
      when it appears. A saved position whose fingerprint no longer matches starts at 0.
    * `poll()` is for one caller at a time (the agent runs polls one after another in a worker
      thread); `close()` may come from any thread.
    """

    def __init__(
        self,
        path: str,
        *,
        position: TailPosition | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        poll_interval: float = 0.25,
        retry_interval: float = 10.0,
        start_at_end: bool = False,
        rotation_grace_polls: int = ROTATION_GRACE_POLLS,
        opener: Opener = open_readonly,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.rotation_grace_polls = rotation_grace_polls
        self.status = TailStatus("starting")
        self.cut_lines = 0
        self.dropped_partials = 0
        self._opener = opener
        # Only applies to the very first file seen when there is no saved position.
        self._start_at_end = start_at_end and position is None
        self._position = position
        self._fd: int | None = None
        self._device = 0
        self._inode = 0
        self._read_offset = 0  # next byte to read
        self._head = b""  # the file's first min(256, read_offset) bytes
        self._partial = bytearray()  # bytes of the current incomplete line
        self._discarding = False  # skipping the rest of a line that was cut
        self._at_eof = True
        self._ready: deque[_Line] = deque()
        self._rotation_polls = 0
        self._switch_pending = False
        # Guards only the two flags below, never held during I/O.
        self._lock = threading.Lock()
        self._polling = False
        self._close_requested = False
        self._clock = clock  # `follow`'s, for how long the file has been quiet

    @property
    def position(self) -> TailPosition | None:
        """Just past the last line handed out; None before any file was ever opened."""
        return self._position

    @property
    def backlog(self) -> bool:
        """True when more lines are already known to be waiting (poll again without delay)."""
        return bool(self._ready) or not self._at_eof

    def poll(self, max_lines: int = 500) -> PollResult:
        """Read what is new and return up to `max_lines` complete lines and the position.

        Raises OSError only for unexpected I/O errors; a missing or unreadable path is reported
        in `status` instead.
        """
        if max_lines < 1:
            raise ValueError("max_lines must be positive")
        with self._lock:
            self._polling = True
        try:
            if not self._ready:
                self._fill(max_lines)
            ready = self._ready
            if len(ready) <= max_lines:
                taken = list(ready)
                ready.clear()
            else:
                taken = [ready.popleft() for _ in range(max_lines)]
            lines = [text for text, _, _ in taken]
            if taken:
                # Only the position past the last line handed out is ever seen: the head is
                # hashed once per poll, not once per line.
                _, end, discarding = taken[-1]
                self._position = self._make_position(end, discarding)
            return PollResult(lines, self._position)
        finally:
            with self._lock:
                self._polling = False
                if self._close_requested:
                    self._close_requested = False
                    self._close_fd()

    def close(self) -> None:
        """Release the file. Safe from another thread while a poll runs (a cancelled task
        leaves its poll running in the worker thread): the descriptor is then closed when that
        poll ends, never under its feet. A later poll reopens the file where it left off."""
        with self._lock:
            if self._polling:
                self._close_requested = True
                return
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def follow(
        self, stop: asyncio.Event, *, max_lines: int = 500
    ) -> AsyncIterator[PollResult]:
        """Poll in a worker thread every `poll_interval` seconds until `stop` is set.

        Yields every poll's result (often empty, so the caller sees status changes). Polls
        again at once while there is a backlog; waits `retry_interval` after an unreadable
        path or an I/O error, so a denied file is not hammered. A file quiet (or missing) for
        `IDLE_AFTER_S` is polled every `idle_interval(poll_interval)` (1 s at the default
        0.25 s) until a line comes: each poll costs a thread hand-off and a loop wake-up, about
        0.25 ms of CPU on a slow host, and an idle agent polls several files (issue 4's 1%
        of a core when the host is quiet). The first line after a quiet spell is read within
        that longer interval; the lines after it at `poll_interval`. Like Filebeat's backoff,
        shorter.
        """
        clock = self._clock
        idle_delay = idle_interval(self.poll_interval)
        last_line_at = clock()
        try:
            while not stop.is_set():
                try:
                    result = await asyncio.to_thread(self.poll, max_lines)
                except OSError as exc:
                    self.status = TailStatus("error", _describe(exc))
                    result = PollResult([], self._position)
                yield result
                if self.backlog and self.status.state == "open":
                    continue
                now = clock()
                if result.lines:
                    last_line_at = now
                if self.status.state in ("unreadable", "error"):
                    delay = self.retry_interval
                elif now - last_line_at >= IDLE_AFTER_S:
                    delay = idle_delay
                else:
                    delay = self.poll_interval
                await self._wait(stop, delay)
        finally:
            self.close()

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        """Wait `delay` seconds or until `stop` is set (tests replace it to see the delays)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    # --- reading -------------------------------------------------------------------------

    def _fill(self, max_lines: int) -> None:
        if self._fd is None and not self._open_path():
            return
        if self._switch_pending:
            self._switch()
            if self._fd is None:
                return
        read_any = self._read(max_lines)
        if self._at_eof:
            self._check_path(read_any, max_lines)

    def _read(self, max_lines: int) -> bool:
        """Read until EOF or until `max_lines` lines are waiting; True if any byte was read."""
        assert self._fd is not None
        self._check_truncation()
        read_any = False
        self._at_eof = False
        while len(self._ready) < max_lines:
            chunk = os.pread(self._fd, READ_CHUNK_BYTES, self._read_offset)
            if not chunk:
                self._at_eof = True
                break
            read_any = True
            if self._read_offset < FINGERPRINT_BYTES:
                self._head += chunk[: FINGERPRINT_BYTES - self._read_offset]
            self._split(chunk, self._read_offset)
            self._read_offset += len(chunk)
            if len(chunk) < READ_CHUNK_BYTES:
                # A short read is EOF as of now; saves the empty read that would confirm it.
                self._at_eof = True
                break
        return read_any

    def _split(self, chunk: bytes, chunk_offset: int) -> None:
        start = 0
        if self._discarding or self._partial:
            # The first newline ends the line carried over from the previous chunk.
            nl = chunk.find(b"\n")
            if nl < 0:
                self._extend_partial(chunk, chunk_offset + len(chunk))
                return
            if self._discarding:
                self._discarding = False
            else:
                self._partial += chunk[:nl]
                self._emit(bytes(self._partial), chunk_offset + nl + 1, discarding=False)
                self._partial.clear()
            start = nl + 1
        last_nl = chunk.rfind(b"\n")
        if last_nl >= start:
            # The complete lines in between, the per-line path of every tailed file: one split
            # in C, then what `_emit` does, inlined.
            append, max_bytes = self._ready.append, self.max_line_bytes
            end = chunk_offset + start
            for raw in chunk[start:last_nl].split(b"\n"):
                end += len(raw) + 1
                if len(raw) > max_bytes:
                    raw = raw[:max_bytes]
                    self.cut_lines += 1
                append((raw.decode("utf-8", errors="replace"), end, False))
            start = last_nl + 1
        if start < len(chunk):
            self._extend_partial(chunk[start:], chunk_offset + len(chunk))

    def _extend_partial(self, piece: bytes, end_offset: int) -> None:
        if self._discarding:
            return
        self._partial += piece
        if len(self._partial) > self.max_line_bytes:
            # Hand out the cut prefix now rather than buffer an unbounded line.
            cut_end = end_offset - (len(self._partial) - self.max_line_bytes)
            self._emit(bytes(self._partial), cut_end, discarding=True)
            self._partial.clear()
            self._discarding = True

    def _emit(self, raw: bytes, end: int, *, discarding: bool) -> None:
        if len(raw) > self.max_line_bytes:
            raw = raw[: self.max_line_bytes]
            self.cut_lines += 1
        self._ready.append((raw.decode("utf-8", errors="replace"), end, discarding))

    def _make_position(self, offset: int, discarding: bool) -> TailPosition:
        fp_len = min(FINGERPRINT_BYTES, offset)
        return TailPosition(
            device=self._device,
            inode=self._inode,
            offset=offset,
            fingerprint=_fingerprint(self._head[:fp_len]),
            fingerprint_len=fp_len,
            discarding=discarding,
        )

    # --- file identity -------------------------------------------------------------------

    def _check_truncation(self) -> None:
        assert self._fd is not None
        truncated = os.fstat(self._fd).st_size < self._read_offset
        if not truncated and self._head:
            # Truncated and rewritten up to or past our offset between two polls: only the
            # first bytes can tell (size and mtime may both look unchanged).
            truncated = os.pread(self._fd, len(self._head), 0) != self._head
        if truncated:
            self._restart_at(0, discarding=False)
            self._position = self._make_position(0, False)

    def _check_path(self, read_any: bool, max_lines: int) -> None:
        """After reaching EOF: has the path moved on to another file?"""
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (self._device, self._inode):
            self._rotation_polls = 0
            return
        if self._rotation_polls < self.rotation_grace_polls and (read_any or st is None):
            # The old file is still being written to (a syslog daemon keeps its descriptor
            # until logrotate's postrotate HUP), or nothing has replaced it yet: keep draining.
            self._rotation_polls += 1
            return
        if st is None:
            # Deleted or renamed away and nothing new in its place: let go, so that a deleted
            # file's space is freed; reopen when the path reappears.
            self._drop_partial()
            self._close_fd()
            self.status = TailStatus("missing", "not found")
            return
        if self._ready:
            # Lines of the old file are still to be handed out; switch on the next poll.
            self._switch_pending = True
            return
        self._switch()
        if self._fd is not None:
            self._read(max_lines)

    def _switch(self) -> None:
        """Leave the old file for the one now at the path, read from its start."""
        self._switch_pending = False
        self._drop_partial()
        self._close_fd()
        self._open_path(fresh=True)

    def _drop_partial(self) -> None:
        if self._partial:
            self.dropped_partials += 1
        self._partial.clear()

    def _open_path(self, *, fresh: bool = False) -> bool:
        """Open the file now at the path; `fresh` means a rotated-in file, read from 0."""
        try:
            fd = self._opener(self.path)
        except FileNotFoundError:
            # A file that appears later is new: read it whole even when starting at the end.
            self._start_at_end = False
            self.status = TailStatus("missing", "not found")
            return False
        except PermissionError:
            self.status = TailStatus("unreadable", "permission denied")
            return False
        except OSError as exc:
            self.status = TailStatus("error", _describe(exc))
            return False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                self.status = TailStatus("unreadable", "not a regular file")
                return False
            self._fd = fd
            self._device, self._inode = st.st_dev, st.st_ino
            self._rotation_polls = 0
            offset, discarding = (0, False) if fresh else self._resume_offset(fd, st.st_size)
            self._restart_at(offset, discarding=discarding)
            self._position = self._make_position(offset, discarding)
        except OSError:
            self._close_fd()
            raise
        self.status = TailStatus("open")
        return True

    def _resume_offset(self, fd: int, size: int) -> tuple[int, bool]:
        pos = self._position
        if pos is None:
            if self._start_at_end and size > 0:
                self._start_at_end = False
                last = os.pread(fd, 1, size - 1)
                # Mid-line: skip the rest of that line rather than hand out its tail.
                return size, last != b"\n"
            self._start_at_end = False
            return 0, False
        # The device number is not compared: it can change across reboots (LVM, dm-N), and
        # the fingerprint already tells a re-created file from the one we were reading.
        if pos.offset == 0 or size < pos.offset:
            return 0, False
        head = os.pread(fd, pos.fingerprint_len, 0)
        if len(head) == pos.fingerprint_len and _fingerprint(head) == pos.fingerprint:
            return pos.offset, pos.discarding
        return 0, False

    def _restart_at(self, offset: int, *, discarding: bool) -> None:
        assert self._fd is not None
        self._drop_partial()
        self._ready.clear()
        self._read_offset = offset
        self._discarding = discarding
        self._head = os.pread(self._fd, min(FINGERPRINT_BYTES, offset), 0) if offset else b""
        self._at_eof = False


def _describe(exc: OSError) -> str:
    if exc.errno == errno.EACCES or exc.errno == errno.EPERM:
        return "permission denied"
    return exc.strerror or str(exc)


async def new_lines(
    tailer: FileTailer,
    stop: asyncio.Event,
    health: SourceHealth,
    on_poll: Callable[[], None],
    *,
    max_lines: int = 500,
) -> AsyncIterator[tuple[list[str], TailPosition]]:
    """The chunks of a followed file that move its position, for a source to parse and emit
    with the position as its checkpoint (a chunk may hold no line: the position moved past
    skipped bytes). Lines cut at `max_line_bytes` ("line_truncated") and partial lines lost to
    a rotation ("partial_line_dropped") are counted in `health`; `on_poll` runs after every
    poll, so the source's state follows the file's."""
    emitted = tailer.position
    cut = dropped = 0
    async for lines, position in tailer.follow(stop, max_lines=max_lines):
        if tailer.cut_lines > cut:
            health.count_unparsed("line_truncated", tailer.cut_lines - cut)
        if tailer.dropped_partials > dropped:
            health.count_unparsed("partial_line_dropped", tailer.dropped_partials - dropped)
        cut, dropped = tailer.cut_lines, tailer.dropped_partials
        on_poll()
        if position is None or (not lines and position == emitted):
            continue
        yield lines, position
        emitted = position
