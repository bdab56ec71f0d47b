"""Walking and hashing: the byte budget (against a fake clock), the prober and the walk."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from agent.sources.fim.roots import Scope
from agent.sources.fim.scanner import (
    CHUNK_BYTES,
    ByteBudget,
    FileProber,
    StopRequestedError,
    walk_dirs,
    walk_files,
)


class FakeTime:
    """A clock that only sleeping moves forward; records each read with its time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


class CountingBudget(ByteBudget):
    def __init__(self, rate: int, fake: FakeTime) -> None:
        super().__init__(rate, clock=fake.clock, sleep=fake.sleep)
        self.fake = fake
        self.reads: list[tuple[float, int]] = []

    def spend(self, n: int) -> None:
        self.reads.append((self.fake.now, n))
        super().spend(n)


def test_budget_bounds_bytes_per_second_while_hashing(tmp_path: Path) -> None:
    rate = 1024 * 1024
    for i in range(6):
        (tmp_path / f"f{i}").write_bytes(os.urandom(CHUNK_BYTES + 1000 * i))
    fake = FakeTime()
    budget = CountingBudget(rate, fake)
    prober = FileProber(budget, max_file_bytes=10 * CHUNK_BYTES)
    start = fake.now
    for path in sorted(tmp_path.iterdir()):
        assert prober.probe(str(path)).record is not None
    total = sum(n for _, n in budget.reads)
    assert total == sum(p.stat().st_size for p in tmp_path.iterdir())
    elapsed = fake.now - start
    # Everything read was paid for in time: at most the burst allowance over the rate.
    assert total <= rate * (elapsed + 0.25) + 1
    # And in every one-second window, the bytes read stay within rate + burst + one chunk.
    for t0, _ in budget.reads:
        window = sum(n for t, n in budget.reads if t0 <= t < t0 + 1.0)
        assert window <= rate * 1.25 + CHUNK_BYTES


def test_budget_does_not_sleep_within_burst() -> None:
    fake = FakeTime()
    budget = ByteBudget(1000, clock=fake.clock, sleep=fake.sleep)
    budget.spend(200)
    assert fake.slept == 0
    budget.spend(1000)
    assert fake.slept == pytest.approx(0.95)


def prober(max_bytes: int = 1 << 20) -> FileProber:
    return FileProber(ByteBudget(1 << 30), max_bytes)


def test_probe_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    probe = prober().probe(str(path))
    assert probe.note is None
    assert probe.record is not None
    assert probe.record.sha256 == hashlib.sha256(b"hello").hexdigest()
    st = path.stat()
    assert (probe.record.size, probe.record.inode, probe.record.mode) == (
        5,
        st.st_ino,
        st.st_mode,
    )


def test_probe_too_large_keeps_metadata(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100)
    probe = prober(max_bytes=10).probe(str(path))
    assert probe.note == "too_large_to_hash"
    assert probe.record is not None
    assert (probe.record.sha256, probe.record.size) == ("", 100)


def test_probe_symlink_hashes_target_text_and_fifo_is_special(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("/etc/shadow")
    probe = prober().probe(str(link))
    assert probe.record is not None
    assert probe.record.sha256 == hashlib.sha256(b"/etc/shadow").hexdigest()
    os.mkfifo(tmp_path / "fifo")
    assert prober().probe(str(tmp_path / "fifo")).note == "special_file"
    assert prober().probe(str(tmp_path / "missing")).record is None
    assert prober().probe(str(tmp_path)).record is None


def test_quick_probe_skips_reading_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    fake = FakeTime()
    budget = CountingBudget(1 << 20, fake)
    first = FileProber(budget, 1 << 20).probe(str(path)).record
    assert first is not None
    assert len(budget.reads) == 1
    again = FileProber(budget, 1 << 20).probe(str(path), previous=first).record
    assert again == first
    assert len(budget.reads) == 1  # not read again
    path.write_bytes(b"abd")
    changed = FileProber(budget, 1 << 20).probe(str(path), previous=first).record
    assert changed is not None
    assert changed.sha256 != first.sha256


def test_stopping_interrupts_hashing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(StopRequestedError):
        FileProber(ByteBudget(1 << 20), 1 << 20, stopping).probe(str(path))


def test_walk_skips_excluded_and_does_not_follow_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "cache").mkdir()
    (root / "x").write_text("")
    (root / "a" / "b" / "y").write_text("")
    (root / "a" / "skip.log").write_text("")
    (root / "cache" / "z").write_text("")
    (root / "outside").symlink_to(tmp_path)
    scope = Scope([str(root)], ["*.log", f"{root}/cache"])
    errors: list[str] = []
    files = list(walk_files(str(root), scope, errors.append))
    assert files == [str(root / "outside"), str(root / "x"), str(root / "a" / "b" / "y")]
    dirs = list(walk_dirs(str(root), scope, errors.append))
    assert dirs == [str(root), str(root / "a"), str(root / "a" / "b")]
    assert errors == []
    assert list(walk_files(str(root / "x"), scope, errors.append)) == [str(root / "x")]
    assert list(walk_files(str(root / "nope"), scope, errors.append)) == []
