"""Model-based test of FileTailer: every completed line it could see arrives once, in order.

The model tracks the byte streams that appear at the path. A stream ends when the file is
truncated (same inode, new stream) or leaves the path (rename, delete). The tailer can read a
stream while the stream is at the path, and after it left the path only if the tailer was
holding it open (it was the file being read at the last poll and no restart happened since).
`visible` is how much of a stream the tailer could have read at the last poll that could reach
it. The lines expected are, stream after stream, the complete lines of each stream's visible
bytes (cut to MAX bytes; an over-long partial line is handed out cut, as soon as seen).

Every write starts with a fresh sequence number, as real log lines start with a timestamp: a
file truncated and rewritten between two polls then differs in its first bytes, which is how
any tailer tells it from an append.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent.sources.tailer import FileTailer, TailPosition

MAX = 40
TEXT = st.text(alphabet="ab é\r\x00", max_size=50)


class Stream:
    def __init__(self) -> None:
        self.content = bytearray()
        self.visible: int | None = None  # None: the tailer never had it open
        self.reachable = True  # False once the tailer can no longer read what it missed

    def expected(self) -> list[str]:
        if self.visible is None:
            return []
        *complete, tail = bytes(self.content[: self.visible]).split(b"\n")
        out = [line[:MAX].decode("utf-8", errors="replace") for line in complete]
        if len(tail) > MAX:
            out.append(tail[:MAX].decode("utf-8", errors="replace"))
        return out


class TailerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="canhgac-tailer-model-"))
        self.path = self.dir / "auth.log"
        self.seq = 0
        self.rotations = 0
        self.streams: list[Stream] = []
        self.current: Stream | None = None  # the stream now at the path
        self.held: Stream | None = None  # the stream the tailer had open at the last poll
        self.renamed: tuple[Path, Stream] | None = None  # the last file rotated by rename
        self.delivered: list[str] = []
        self.tailer = FileTailer(str(self.path), max_line_bytes=MAX)

    # --- writer ---------------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        if self.current is None:
            self._new_stream()
        assert self.current is not None
        with self.path.open("ab") as f:
            f.write(data)
        self.current.content += data

    def _new_stream(self) -> None:
        self.current = Stream()
        self.streams.append(self.current)
        self.path.touch()

    def _token(self) -> bytes:
        self.seq += 1
        return f"{self.seq:06d}".encode()

    def _leave_path(self) -> None:
        assert self.current is not None
        if self.current is not self.held:
            self.current.reachable = False
        self.current = None

    def _rotated_name(self) -> Path:
        self.rotations += 1
        return self.dir / f"auth.log.{self.rotations}"

    @rule(text=TEXT)
    def write_line(self, text: str) -> None:
        self._append(self._token() + text.encode() + b"\n")

    @rule(text=TEXT)
    def write_partial_line(self, text: str) -> None:
        self._append(self._token() + text.encode())

    @precondition(lambda self: self.current is not None)
    @rule()
    def rotate_by_rename(self) -> None:
        assert self.current is not None
        rotated = self._rotated_name()
        os.rename(self.path, rotated)
        self.renamed = (rotated, self.current)
        self._leave_path()
        self._new_stream()

    @precondition(lambda self: self.renamed is not None)
    @rule(text=TEXT)
    def write_line_to_renamed_file(self, text: str) -> None:
        """A syslog daemon that has not been told to reopen writes on to the renamed file."""
        assert self.renamed is not None
        rotated, stream = self.renamed
        data = self._token() + text.encode() + b"\n"
        with rotated.open("ab") as f:
            f.write(data)
        stream.content += data

    @precondition(lambda self: self.current is not None)
    @rule()
    def copy_truncate(self) -> None:
        shutil.copyfile(self.path, self._rotated_name())
        self._truncate()

    @precondition(lambda self: self.current is not None)
    @rule()
    def truncate(self) -> None:
        self._truncate()

    def _truncate(self) -> None:
        assert self.current is not None
        os.truncate(self.path, 0)
        old = self.current
        old.reachable = False  # what was not read before is gone
        self.current = Stream()
        self.streams.append(self.current)
        if self.held is old:
            # Same inode: a descriptor open on the old stream now reads the new one.
            self.held = self.current

    @precondition(lambda self: self.current is not None)
    @rule(recreate=st.booleans())
    def delete(self, recreate: bool) -> None:
        self.path.unlink()
        self._leave_path()
        if recreate:
            self._new_stream()

    # --- reader ---------------------------------------------------------------------------

    @rule()
    def restart_from_saved_position(self) -> None:
        position = self.tailer.position
        saved = None if position is None else TailPosition.from_json(position.to_json())
        self.tailer.close()
        # Only the file at the path can still be read; whatever else the old tailer held is
        # lost with its descriptor.
        for stream in self.streams:
            if stream is not self.current:
                stream.reachable = False
        self.held = None
        self.tailer = FileTailer(str(self.path), position=saved, max_line_bytes=MAX)

    @rule()
    def poll(self) -> None:
        last: object = object()
        for _ in range(200):
            lines, position = self.tailer.poll(max_lines=3)
            self.delivered += lines
            if not lines and position == last:
                break
            last = position
        else:
            raise AssertionError("the tailer never settled")
        for stream in (self.held, self.current):
            if stream is not None and stream.reachable:
                stream.visible = len(stream.content)
        if self.current is not None:
            if self.held is not None and self.held is not self.current:
                self.held.reachable = False  # the tailer has moved on to the new file
            self.held = self.current

    @invariant()
    def delivered_exactly_once_in_order(self) -> None:
        expected = [line for stream in self.streams for line in stream.expected()]
        assert self.delivered == expected

    def teardown(self) -> None:
        self.tailer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TailerModel.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tailer_model = TailerModel.TestCase
