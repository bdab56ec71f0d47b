"""The devicelog TCP framer (RFC 6587) against the receiver's former framing loop, kept here as
the oracle, for every stream and every chunking; and its reasons, one example each."""

from __future__ import annotations

import itertools
import re
from typing import Final

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.devicelog.framing import Rfc6587Framer

# One step per chunk fed, the last for the end of the stream: (frames, reasons counted).
Step = tuple[list[bytes], list[str]]

# The old code's pattern, copied with it so that the oracle does not move with the new module.
_OLD_OCTET_COUNT: Final = re.compile(rb"([0-9]{1,10}) (?=<)")


def old_read_frames(chunks: list[bytes], limit: int) -> list[Step]:
    """THE OLD CODE, KEPT AS THE ORACLE: the framing loop of `DeviceLogSource._read_frames`
    before it moved to `framing.Rfc6587Framer` (quadratic: it re-slices `buffer` per frame).

    The loop is verbatim; only its I/O is replaced: `chunks` then b"" (the end of the stream)
    stand for `reader.read`, `count` for `self.health.count_unparsed`, and offering a frame
    becomes recording it. Not to be "fixed": it is what the new framer must equal.
    """
    steps: list[Step] = []

    def count(reason: str) -> None:
        steps[-1][1].append(reason)

    buffer = b""
    discarding = 0  # bytes of an oversize counted frame still to skip
    skipping_line = False  # inside an oversize newline-framed message
    for chunk in [*chunks, b""]:
        steps.append(([], []))
        if not chunk:
            if buffer.strip() or discarding:
                count("truncated_frame")
            return steps
        buffer += chunk
        while buffer:
            if discarding:
                cut = min(discarding, len(buffer))
                buffer, discarding = buffer[cut:], discarding - cut
                continue
            if skipping_line:
                end = buffer.find(b"\n")
                if end < 0:
                    buffer = b""
                    break
                buffer, skipping_line = buffer[end + 1 :], False
                continue
            if buffer[:1] in (b"\n", b"\r", b" "):
                buffer = buffer.lstrip(b"\r\n ")
                continue
            if (m := _OLD_OCTET_COUNT.match(buffer)) is not None:
                length = int(m[1])
                if length == 0:
                    count("bad_frame_length")
                    buffer = buffer[m.end() :]
                    continue
                if length > limit:
                    count("oversize")
                    buffer, discarding = buffer[m.end() :], length
                    continue
                if len(buffer) < m.end() + length:
                    break  # the rest of the frame is still to come
                frame, buffer = buffer[m.end() : m.end() + length], buffer[m.end() + length :]
            else:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) > limit:
                        count("oversize")
                        buffer, skipping_line = b"", True
                    break
                frame, buffer = buffer[:end], buffer[end + 1 :]
                if len(frame) > limit:
                    count("oversize")
                    continue
            steps[-1][0].append(frame)
    raise AssertionError("unreachable: the stream always ends")


def new_read_frames(chunks: list[bytes], limit: int) -> list[Step]:
    """The same steps from `Rfc6587Framer`: one `feed` per chunk, then `end`."""
    steps: list[Step] = []

    def count(reason: str) -> None:
        steps[-1][1].append(reason)

    framer = Rfc6587Framer(limit, count)
    for chunk in chunks:
        steps.append(([], []))
        steps[-1][0].extend(framer.feed(chunk))
    steps.append(([], []))
    framer.end()
    return steps


def frames_and_reasons(steps: list[Step]) -> tuple[list[bytes], list[str]]:
    return [f for s in steps for f in s[0]], [r for s in steps for r in s[1]]


# --- generated streams --------------------------------------------------------------------

# Bytes a frame's body may hold: digits, spaces, "<", newlines, CR, a tab (whitespace
# `strip` removes and framing does not) and letters.
BODY = st.lists(st.sampled_from([b"a", b"<", b"1", b"0", b" ", b"\n", b"\r", b"\t", b"z"])).map(
    b"".join
)


@st.composite
def tokens(draw: st.DrawFn) -> bytes:
    """One piece of a stream: a frame of either framing, in or over the limit, or junk."""
    kind = draw(
        st.sampled_from(
            ["counted", "counted_big", "zero", "line", "line_big", "separators", "digits", "junk"]
        )
    )
    if kind == "counted":  # an octet-counted frame (its body may hold newlines)
        body = b"<" + draw(BODY)
        return b"%d %s" % (len(body), body)
    if kind == "counted_big":  # a count that may be over the limit, with its bytes
        body = b"<" + draw(st.binary(max_size=60))
        return b"%d %s" % (len(body), body)
    if kind == "zero":
        return b"0 <" + draw(BODY)
    if kind == "line":
        return draw(BODY.filter(lambda b: b"\n" not in b)) + b"\n"
    if kind == "line_big":
        return b"x" * draw(st.integers(1, 60)) + b"\n"
    if kind == "separators":
        return draw(st.lists(st.sampled_from([b"\r", b"\n", b" "]), min_size=1).map(b"".join))
    if kind == "digits":  # counts too long, without their space or "<", or huge
        return draw(st.sampled_from([b"12345678901 <", b"99999999999 <", b"12", b"3 ", b"7 x"]))
    return draw(st.binary(max_size=8))


@st.composite
def chunked_streams(draw: st.DrawFn) -> list[bytes]:
    """A stream of tokens cut into non-empty chunks (as `reader.read` gives them) anywhere."""
    stream = b"".join(draw(st.lists(tokens(), max_size=12)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(stream)), max_size=10))))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=600, deadline=None)
@given(chunks=chunked_streams(), limit=st.integers(1, 48))
def test_the_framer_matches_the_old_loop_for_any_stream_and_chunking(
    chunks: list[bytes], limit: int
) -> None:
    # Step by step: the same frames, the same reasons in the same order, after each chunk and
    # at the end (a reason is counted at the chunk that shows it, as it used to be).
    assert new_read_frames(chunks, limit) == old_read_frames(chunks, limit)


@settings(max_examples=300, deadline=None)
@given(chunks=chunked_streams(), data=st.data())
def test_the_framer_matches_the_old_loop_with_the_stream_cut_byte_by_byte(
    chunks: list[bytes], data: st.DataObject
) -> None:
    limit = data.draw(st.integers(1, 48))
    stream = b"".join(chunks)
    single = [stream[i : i + 1] for i in range(len(stream))]
    assert new_read_frames(single, limit) == old_read_frames(single, limit)


# --- one example per reason ---------------------------------------------------------------


def test_both_framings_and_separators_give_the_frames_in_order() -> None:
    stream = b"\r\n 5 <1>ab<2>line one\n \r\n8 <3>x\ny\nz\r\nlast\n"
    frames, reasons = frames_and_reasons(new_read_frames([stream], 64))
    assert frames == [b"<1>ab", b"<2>line one", b"<3>x\ny\nz", b"last"]
    assert reasons == []


def test_a_frame_split_across_chunks_waits_for_its_rest() -> None:
    steps = new_read_frames([b"1", b"0 <1>", b"abc", b"defg", b"<2>li", b"ne\n"], 64)
    assert [s[0] for s in steps] == [[], [], [], [b"<1>abcdefg"], [], [b"<2>line"], []]


def test_a_zero_count_is_a_bad_frame_length_and_what_follows_is_read_next() -> None:
    frames, reasons = frames_and_reasons(new_read_frames([b"0 <1>next\n"], 64))
    assert (frames, reasons) == ([b"<1>next"], ["bad_frame_length"])


def test_a_count_over_the_limit_is_skipped_whole() -> None:
    # Its body holds a newline and what looks like a frame: neither is read.
    big = b"<1>" + b"a\n5 <2>b" + b"y" * 20
    chunks = [b"%d %s" % (len(big), big[:10]), big[10:] + b"<3>kept\n"]
    frames, reasons = frames_and_reasons(new_read_frames(chunks, 16))
    assert (frames, reasons) == ([b"<3>kept"], ["oversize"])


def test_a_line_over_the_limit_is_skipped_to_its_newline_even_before_it_ends() -> None:
    steps = new_read_frames([b"x" * 20, b"y" * 20, b"\n<1>kept\n"], 16)
    assert steps == [([], ["oversize"]), ([], []), ([b"<1>kept"], []), ([], [])]
    frames, reasons = frames_and_reasons(new_read_frames([b"x" * 17 + b"\nok\n"], 16))
    assert (frames, reasons) == ([b"ok"], ["oversize"])


def test_a_stream_that_ends_inside_a_frame_is_a_truncated_frame() -> None:
    for chunks in ([b"<1>no newline"], [b"20 <1>short"], [b"30 <1>", b"x" * 10]):
        assert frames_and_reasons(new_read_frames(chunks, 24))[1][-1:] == ["truncated_frame"]


def test_trailing_whitespace_or_an_oversize_line_at_the_end_is_not_truncated() -> None:
    # As before the framer: `strip` whitespace (a tab too) is no frame, and an oversize line
    # already counted is not counted again.
    for chunks in ([b"<1>ok\n \t\r\n"], [b"x" * 30]):
        reasons = frames_and_reasons(new_read_frames(chunks, 16))[1]
        assert "truncated_frame" not in reasons


# --- linear work --------------------------------------------------------------------------


def test_one_chunk_of_many_tiny_frames_is_compacted_once() -> None:
    # The old loop copied the rest of the buffer for every frame (quadratic in a chunk's
    # frames); the framer drops what it consumed once per feed, whatever the frame count.
    frames_in = 20_000
    chunk = b"".join(b"4 <1>%d" % (i % 10) for i in range(frames_in))
    reasons: list[str] = []
    framer = Rfc6587Framer(64, reasons.append)
    frames = framer.feed(chunk)
    assert len(frames) == frames_in
    assert frames[:2] == [b"<1>0", b"<1>1"]
    assert reasons == []
    assert framer.pending == 0
    assert framer.compactions == 1
    # An unfinished frame stays, the rest is dropped: still one compaction for that feed.
    framer.feed(b"5 <1>a\n" + b"9 <2>par")
    assert (framer.pending, framer.compactions) == (len(b"9 <2>par"), 2)
    assert framer.feed(b"tly") == [b"<2>partly"]
    assert (framer.pending, framer.compactions) == (0, 3)


def test_a_message_dripped_a_byte_at_a_time_is_copied_about_once() -> None:
    # A sender (any device on the network) that sends one long message a byte per segment:
    # joining the unfinished frame with each byte would copy it 60,000 times (1.8 GB here).
    size = 60_000
    counted = b"<13>" + b"c" * (size - 4)
    for message, expected in (
        (b"%d %s" % (len(counted), counted), counted),
        (b"<13>" + b"n" * (size - 4) + b"\n", b"<13>" + b"n" * (size - 4)),
        (b"12345" + b"d" * (size - 5) + b"\n", b"12345" + b"d" * (size - 5)),  # digits, no count
    ):
        reasons: list[str] = []
        framer = Rfc6587Framer(64 * 1024, reasons.append)
        frames: list[bytes] = []
        for i in range(len(message)):
            frames += framer.feed(message[i : i + 1])
        assert frames == [expected]
        assert reasons == []
        assert framer.pending == 0
        assert framer.copied <= 2 * len(message)
    # Still framed by the old rules while it waits: an unfinished line over the limit is
    # oversize at once, and a waiting count's frame ends exactly at its count.
    reasons = []
    framer = Rfc6587Framer(100, reasons.append)
    for _ in range(101):
        assert framer.feed(b"x") == []
    assert reasons == ["oversize"]
    assert framer.feed(b"x\n5 <1>a") == []
    assert framer.feed(b"b") == [b"<1>ab"]
