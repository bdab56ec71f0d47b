"""RFC 6587 framing of a syslog TCP stream, without I/O.

Contract:
* `Rfc6587Framer.feed(chunk)` takes the stream's next bytes, as the connection delivered them,
  and returns the frames they complete, in stream order. The frames are the same for every
  way of cutting the stream into chunks, except where noted below.
* A frame that starts with 1-10 digits, a space and "<" is octet counted (`LEN SP <PRI>...`):
  its LEN bytes after the space are the frame. Any other frame ends at the next "\\n" (which is
  not part of it). CR, LF and spaces between frames are skipped.
* What yields no frame is counted by reason through the `count` callable: "bad_frame_length"
  (a count of 0; the bytes after it are read as the next frame), "oversize" (a count over
  `limit`, whose LEN bytes are skipped whole; a newline-framed message over `limit`, skipped to
  its newline), and, at `end()`, "truncated_frame" (the stream closed inside a frame or inside
  an oversize counted frame's skip).
* A newline-framed message with no newline yet is counted "oversize" as soon as the unconsumed
  bytes exceed `limit`, so, as in the receiver before this module, whether such a message is
  counted when it turns out to be an octet count split across chunks depends on the chunking;
  only a `limit` under 11 bytes can meet this (a count and its space are at most 11 bytes).
* Work is linear in the bytes fed: frames are found by offset in one buffer, and the consumed
  prefix is dropped once per `feed`, never once per frame. An unfinished frame is kept in a
  growing buffer, and a chunk that cannot finish it (an octet-counted frame still short of its
  count; a newline-framed one with no newline in the chunk and still within `limit`) is only
  appended there: a sender that drips a 64 KiB message a byte at a time costs 64 KiB of
  copying, not 2 GB (`copied` counts the bytes copied to join an unfinished frame).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

# Any count a sender may write: one over the limit is skipped whole ("oversize"), never read
# as the start of a newline-framed message (which would swallow the frames after it).
_OCTET_COUNT: Final = re.compile(rb"([0-9]{1,10}) (?=<)")
# What may stand between two frames (as `bytes.lstrip(b"\r\n ")` would remove).
_SEPARATORS: Final = re.compile(rb"[\r\n ]+")
_SEPARATOR_BYTES: Final = frozenset(b"\r\n ")
# The longest start `_OCTET_COUNT` can need to see ("1234567890 <"): an unfinished frame at
# least this long that is not counted can never become counted.
_COUNT_PREFIX: Final = 12


class Rfc6587Framer:
    """The framing state of one TCP connection (see the module's contract)."""

    def __init__(self, limit: int, count: Callable[[str], None]) -> None:
        """`limit`: the largest frame in bytes; `count`: called with each reason counted."""
        self._limit = limit
        self._count = count
        self._buf = b""  # bytes fed and not yet consumed (between calls)
        # While an unfinished frame waits: its bytes so far, and the size of the whole frame
        # (count included) when it is octet counted, 0 when it is newline framed.
        self._waiting = bytearray()
        self._frame_end = 0
        self._discarding = 0  # bytes of an oversize counted frame still to skip
        self._skipping_line = False  # inside an oversize newline-framed message
        # Times `feed` dropped a consumed prefix: at most once per call, whatever the frames.
        self.compactions = 0
        # Bytes copied to join an unfinished frame with the chunk that goes on with it.
        self.copied = 0

    @property
    def pending(self) -> int:
        """Bytes fed that belong to no returned frame yet (an unfinished frame)."""
        return len(self._waiting) or len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The frames `chunk` completes, in order; reasons counted on the way."""
        if self._waiting:
            if self._still_waiting(chunk):
                self._waiting += chunk  # amortised: no copy of what waited before
                return []
            self.copied += len(self._waiting)
            self._buf = bytes(self._waiting) + chunk
            self._waiting = bytearray()
        elif self._buf:
            self.copied += len(self._buf)
            self._buf += chunk
        else:
            self._buf = chunk
        buf = self._buf
        limit, size = self._limit, len(buf)
        frames: list[bytes] = []
        pos = self._resume()
        # One loop with locals, not a call per frame: per-frame overhead is the whole cost of
        # a chunk of tiny frames. Each frame is one slice (one copy) of `buf`.
        while pos < size:
            byte = buf[pos]
            # The byte test spares frames the regex, which then always matches.
            if byte in _SEPARATOR_BYTES and (gap := _SEPARATORS.match(buf, pos)) is not None:
                pos = gap.end()
                continue
            # A count starts with a digit: the cheap test spares most lines the regex.
            if 0x30 <= byte <= 0x39 and (m := _OCTET_COUNT.match(buf, pos)) is not None:
                length, start = int(m[1]), m.end()
                if length == 0 or length > limit:
                    pos = self._refuse(length, start, size)
                elif size < start + length:
                    self._frame_end = start + length - pos
                    break  # the rest of the frame is still to come
                else:
                    pos = start + length
                    frames.append(buf[start:pos])
                continue
            end = buf.find(b"\n", pos)
            if end < 0:
                if size - pos > limit:  # over the limit before its end: skip to its "\n"
                    self._count("oversize")
                    pos, self._skipping_line = size, True
                else:
                    self._frame_end = 0
                break
            if end - pos > limit:
                self._count("oversize")
            else:  # never empty: separators, "\n" included, were skipped above
                frames.append(buf[pos:end])
            pos = end + 1
        if pos:  # once per feed: drop what was consumed
            self._buf = buf[pos:]
            self.compactions += 1
        if self._buf:  # an unfinished frame: waits in a buffer that grows in place
            self._waiting = bytearray(self._buf)
            self._buf = b""
        return frames

    def _still_waiting(self, chunk: bytes) -> bool:
        """Whether `chunk` only lengthens the waiting frame: framing the two joined would
        return no frame, count nothing and leave all of it waiting (see the contract)."""
        have = len(self._waiting) + len(chunk)
        if self._frame_end:  # octet counted: its count is known
            return have < self._frame_end
        # Newline framed: no newline yet, within the limit, and never to become a count.
        first = self._waiting[0]
        could_count = 0x30 <= first <= 0x39 and len(self._waiting) < _COUNT_PREFIX
        return not could_count and have <= self._limit and b"\n" not in chunk

    def end(self) -> None:
        """The stream closed: count "truncated_frame" if it closed inside a frame. Resets."""
        if self._buf.strip() or self._waiting.strip() or self._discarding:
            self._count("truncated_frame")
        self._buf = b""
        self._waiting = bytearray()
        self._frame_end = 0
        self._discarding = 0
        self._skipping_line = False

    def _resume(self) -> int:
        """Go on with a skip the previous chunk left unfinished; where framing resumes."""
        if self._discarding:
            cut = min(self._discarding, len(self._buf))
            self._discarding -= cut
            return cut
        if self._skipping_line:
            end = self._buf.find(b"\n")
            if end < 0:
                return len(self._buf)
            self._skipping_line = False
            return end + 1
        return 0

    def _refuse(self, length: int, start: int, size: int) -> int:
        """Count a count of 0 or over the limit; where framing resumes (an oversize frame's
        bytes skipped, as far as they came)."""
        if length == 0:
            self._count("bad_frame_length")
            return start
        self._count("oversize")
        cut = min(length, size - start)
        self._discarding = length - cut
        return start + cut
