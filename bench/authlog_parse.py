"""Auth-log source, per line: CPU of the parse and of the whole read path (issue 4).

Three parts, each printed as µs of CPU per line:
* `accepted`: `AuthLogParser.parse` of the sshd lines bench/footprint.py writes
  (tests/e2e/harness.py `accepted_line`);
* `shapes`: the same parser over the line shapes of the parser's test table, round-robin;
* `read`: those sshd lines appended to a real file in bursts and read back the way the source
  does (`FileTailer.poll`, then `parse_lines` into events), without the spool.

The parser runs as in the agent: wall clock, the host's local zone. `--callgrind` runs each part
twice under valgrind (`--lines` and twice that, with the same pre-built lines) and prints the
difference in instructions per line, which start-up and line generation cancel out of; the
machine's load moves the µs figures, not these.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.sources.authlog.parser import AuthLogParser
from agent.sources.authlog.source import EMIT_CHUNK
from agent.sources.base import SourceHealth, parse_lines
from agent.sources.tailer import FileTailer
from canhgac.v1 import events_pb2

ROOT = Path(__file__).resolve().parent.parent
# The test harness and the parser's test table (tests/) are not an installed package: reach
# them from the checkout, which is why these two imports come after this line.
sys.path.insert(0, str(ROOT))

from tests.agent.sources.test_authlog_parser import SHAPES  # noqa: E402
from tests.e2e.harness import accepted_line  # noqa: E402

PARTS = ("accepted", "shapes", "read")
# Lines appended between two polls: a quarter second of the footprint's 1,000 lines/s, as the
# source polls every 250 ms.
BURST = 250


def _parser() -> AuthLogParser:
    return AuthLogParser(agent_id="bench-agent", default_host="bench", clock_ns=time.time_ns)


def _parse_all(lines: list[str]) -> int:
    parse = _parser().parse
    start = time.process_time_ns()
    for line in lines:
        parse(line)
    return time.process_time_ns() - start


def _read_path(lines: list[str], directory: str) -> int:
    """CPU spent polling and parsing `lines`, appended to a file `BURST` lines at a time."""
    path = os.path.join(directory, "auth.log")
    bursts = [
        "".join(f"{line}\n" for line in lines[i : i + BURST]).encode()
        for i in range(0, len(lines), BURST)
    ]
    parse = _parser().parse
    health = SourceHealth()
    tailer = FileTailer(path)
    events = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        spent = 0
        for burst in bursts:
            os.write(fd, burst)
            start = time.process_time_ns()
            while True:
                chunk, _ = tailer.poll(EMIT_CHUNK)
                if not chunk:
                    break
                events += len(parse_lines(chunk, parse, health, path))
            spent += time.process_time_ns() - start
    finally:
        os.close(fd)
        tailer.close()
    if events != len(lines) or health.unparsed:
        raise SystemExit(f"read {events} events of {len(lines)}, skipped {health.unparsed}")
    return spent


def _lines(part: str, count: int) -> list[str]:
    if part == "shapes":
        shapes = [shape.line for shape in SHAPES]
        return [shapes[i % len(shapes)] for i in range(count)]
    return [accepted_line(i).rstrip("\n") for i in range(count)]


def _check(lines: list[str]) -> None:
    parse = _parser().parse
    if not all(isinstance(parse(line), events_pb2.Event) for line in lines[: len(SHAPES)]):
        raise SystemExit("a benchmark line is not parsed into an event")


def run_part(part: str, lines: list[str]) -> int:
    """CPU nanoseconds the part spends on `lines`."""
    _check(lines)
    if part == "read":
        with tempfile.TemporaryDirectory(prefix="canhgac-authlog-") as tmp:
            return _read_path(lines, tmp)
    return _parse_all(lines)


def _instructions(part: str, lines: int, pool: int) -> int:
    with tempfile.TemporaryDirectory(prefix="canhgac-callgrind-") as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            __file__,
            "--part",
            part,
            "--lines",
            str(lines),
            "--pool",
            str(pool),
            "--rounds",
            "1",
        ]
        # A fixed hash seed: dict layouts, and so the instruction counts, repeat from run to run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr}")
    return int(found[1])


def _measure(parts: list[str], count: int, pool: int, rounds: int) -> None:
    for part in parts:
        lines = _lines(part, max(count, pool))[:count]
        best = min(run_part(part, lines) for _ in range(rounds))
        print(f"{part:9} {best / count / 1000:7.2f} µs CPU/line (best of {rounds}, {count} lines)")


def _callgrind(parts: list[str], count: int) -> None:
    for part in parts:
        small = _instructions(part, count, 2 * count)
        large = _instructions(part, 2 * count, 2 * count)
        print(f"{part:9} {(large - small) / count:9,.0f} instructions/line (callgrind)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", choices=PARTS, action="append", help="default: all three")
    p.add_argument("--lines", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--callgrind", action="store_true", help="count instructions instead")
    # Lines built before measuring; the same for both callgrind runs, so that building them
    # cancels out of the difference.
    p.add_argument("--pool", type=int, default=0, help=argparse.SUPPRESS)
    ns = p.parse_args()
    parts: list[str] = ns.part or list(PARTS)
    if ns.callgrind:
        _callgrind(parts, ns.lines)
    else:
        _measure(parts, ns.lines, ns.pool, ns.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
