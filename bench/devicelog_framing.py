"""Devicelog TCP framing: CPU per frame of the old slicing loop and of `Rfc6587Framer`.

Frames 64 KiB chunks of tiny frames (octet-counted or newline-framed, as chosen), each chunk
fed whole as one `reader.read` would give it, and prints µs of CPU per frame for:
* `old`: the receiver's former loop, which re-sliced its buffer for every frame (quadratic in
  the frames of a chunk), kept as the oracle in tests/agent/sources/devicelog/test_framing.py;
* `new`: `agent.sources.devicelog.framing.Rfc6587Framer`.
Both are checked to give the same frames first. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

from agent.sources.devicelog.framing import Rfc6587Framer

ROOT = Path(__file__).resolve().parent.parent
# The oracle lives in the tests, not in an installed package: loaded from the checkout's file.
ORACLE = ROOT / "tests" / "agent" / "sources" / "devicelog" / "test_framing.py"


def _oracle() -> Callable[[list[bytes], int], list[tuple[list[bytes], list[str]]]]:
    """The old framing loop, `old_read_frames` of the framer's tests."""
    spec = importlib.util.spec_from_file_location("devicelog_framing_oracle", ORACLE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {ORACLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: Callable[[list[bytes], int], list[tuple[list[bytes], list[str]]]]
    found = module.old_read_frames
    return found


old_read_frames = _oracle()

CHUNK = 64 * 1024
LIMIT = 65536


def _chunk(kind: str, frame_bytes: int) -> tuple[bytes, int]:
    """64 KiB (at most) of whole tiny frames, and how many there are."""
    frame = b"<1>" + b"x" * max(0, frame_bytes - 3)
    one = b"%d %s" % (len(frame), frame) if kind == "counted" else frame + b"\n"
    n = CHUNK // len(one)
    return one * n, n


def _new(chunks: list[bytes], limit: int) -> list[bytes]:
    framer = Rfc6587Framer(limit, lambda _: None)
    out: list[bytes] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    framer.end()
    return out


def _old(chunks: list[bytes], limit: int) -> list[bytes]:
    return [f for step in old_read_frames(chunks, limit) for f in step[0]]


def _cpu_us_per_frame(run: Callable[[], object], frames: int, repeat: int) -> float:
    """The best of `repeat` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / frames * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--chunks", type=int, default=4, help="64 KiB chunks per run")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--frame-bytes", type=int, default=10, help="bytes of a frame, at least 3")
    args = p.parse_args()
    for kind in ("counted", "newline"):
        chunk, per_chunk = _chunk(kind, args.frame_bytes)
        chunks = [chunk] * args.chunks
        frames = per_chunk * args.chunks
        if _old(chunks, LIMIT) != _new(chunks, LIMIT):
            print(f"{kind}: the framers disagree", file=sys.stderr)
            return 1
        old = _cpu_us_per_frame(functools.partial(_old, chunks, LIMIT), frames, args.repeat)
        new = _cpu_us_per_frame(functools.partial(_new, chunks, LIMIT), frames, args.repeat)
        print(
            f"{kind}: {per_chunk} frames per 64 KiB chunk; "
            f"old {old:.3f} µs/frame ({old * per_chunk / 1000:.2f} ms/chunk), "
            f"new {new:.3f} µs/frame ({new * per_chunk / 1000:.2f} ms/chunk), "
            f"{old / new:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
