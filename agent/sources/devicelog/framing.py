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
* Work per `feed` is linear in the chunk and the unfinished frame carried from before (at most
  `limit` bytes and a count, copied and searched again with each chunk, as before this module):
  frames are found by offset in one buffer, and the consumed prefix is dropped once per
  `feed`, never once per frame.
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


class Rfc6587Framer:
    """The framing state of one TCP connection (see the module's contract)."""

    def __init__(self, limit: int, count: Callable[[str], None]) -> None:
        """`limit`: the largest frame in bytes; `count`: called with each reason counted."""
        self._limit = limit
        self._count = count
        self._buf = b""  # bytes fed and not yet consumed (between calls)
        self._discarding = 0  # bytes of an oversize counted frame still to skip
        self._skipping_line = False  # inside an oversize newline-framed message
        # Times `feed` dropped a consumed prefix: at most once per call, whatever the frames.
        self.compactions = 0

    @property
    def pending(self) -> int:
        """Bytes fed that belong to no returned frame yet (an unfinished frame)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The frames `chunk` completes, in order; reasons counted on the way."""
        # Copies only an unfinished frame's bytes (at most `limit` and a count) with the chunk.
        self._buf = buf = self._buf + chunk if self._buf else chunk
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
                break
            if end - pos > limit:
                self._count("oversize")
            else:  # never empty: separators, "\n" included, were skipped above
                frames.append(buf[pos:end])
            pos = end + 1
        if pos:  # once per feed: drop what was consumed
            self._buf = buf[pos:]
            self.compactions += 1
        return frames

    def end(self) -> None:
        """The stream closed: count "truncated_frame" if it closed inside a frame. Resets."""
        if self._buf.strip() or self._discarding:
            self._count("truncated_frame")
        self._buf = b""
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
