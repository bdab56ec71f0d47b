"""The tailer's line splitting against a plain model, across read chunks of every size."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources import tailer as tailer_module
from agent.sources.tailer import FileTailer

# Newlines, ASCII, a two-byte character, its bytes apart, and a byte never valid in UTF-8.
PIECES = st.lists(
    st.lists(st.sampled_from([b"\n", b"a", b"bc", "é".encode(), b"\xc3", b"\xa9", b"\xff"])).map(
        b"".join
    ),
    max_size=12,
)


def expected_lines(content: bytes, max_line_bytes: int) -> tuple[list[str], int]:
    """Every complete line, and a last unfinished one once it is too long, each cut to
    `max_line_bytes` and decoded on its own; and how many were cut."""
    *complete, rest = content.split(b"\n")
    raw = complete + ([rest] if len(rest) > max_line_bytes else [])
    lines = [r[:max_line_bytes].decode("utf-8", errors="replace") for r in raw]
    return lines, sum(len(r) > max_line_bytes for r in raw)


@settings(max_examples=300, deadline=None)
@given(pieces=PIECES, max_line_bytes=st.integers(1, 12), chunk=st.integers(1, 16))
def test_lines_match_the_model_whatever_the_chunking(
    pieces: list[bytes], max_line_bytes: int, chunk: int
) -> None:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        # Small reads put chunk boundaries inside lines, inside characters and on newlines.
        patch.setattr(tailer_module, "READ_CHUNK_BYTES", chunk)
        path = Path(tmp) / "log"
        path.write_bytes(b"")
        tailer = FileTailer(str(path), max_line_bytes=max_line_bytes)
        for piece in pieces:
            with path.open("ab") as fh:
                fh.write(piece)
            while polled := tailer.poll(max_lines=3).lines:
                lines += polled
        tailer.close()
    want, cut = expected_lines(b"".join(pieces), max_line_bytes)
    assert lines == want
    assert tailer.cut_lines == cut
