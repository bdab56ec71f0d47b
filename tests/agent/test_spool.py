"""The agent's durable spool: batching, stable seqs, acks, caps, damage, crashes, and a model."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent.sources.base import Checkpoint
from agent.spool import (
    DROP_CORRUPT_EVENT,
    DROP_SPOOL_FULL,
    SEQ_RESERVE,
    SpoolBatch,
    SqliteSpool,
)
from canhgac.errors import StorageError
from canhgac.v1 import agent_pb2, events_pb2

REPO = Path(__file__).resolve().parents[2]
BIG = 1 << 30


class FakeClock:
    def __init__(self, start: int = 1_700_000_000_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def event(n: int, pad: int = 40) -> events_pb2.Event:
    return events_pb2.Event(id=f"{n:08d}", time_ns=n, source="test", original="x" * pad)


def events(first: int, last: int, pad: int = 40) -> list[events_pb2.Event]:
    return [event(n, pad) for n in range(first, last + 1)]


def ids(batch: SpoolBatch | None) -> list[int]:
    assert batch is not None
    return [int(e.id) for e in batch.events]


def wire_size(evs: Sequence[events_pb2.Event]) -> int:
    return len(agent_pb2.EventBatch(events=evs).SerializeToString())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool.db"


@pytest.fixture
def spool(path: Path) -> Iterator[SqliteSpool]:
    s = SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock())
    yield s
    s.close()


def reopen(s: SqliteSpool, path: Path, max_bytes: int = BIG) -> SqliteSpool:
    s.close()
    return SqliteSpool(path, max_bytes=max_bytes, clock_ns=FakeClock())


# -- batching and stable seqs ---------------------------------------------------------------


def test_batches_follow_append_order_and_limits(spool: SqliteSpool) -> None:
    spool.append(events(1, 10), None)
    first = spool.next_batch(4, BIG)
    assert first is not None
    assert (first.seq, ids(first)) == (1, [1, 2, 3, 4])
    assert first.size_bytes == wire_size(first.events)
    assert ids(spool.next_batch(100, wire_size(events(5, 7)))) == [5, 6, 7]
    assert ids(spool.next_batch(100, BIG)) == [8, 9, 10]
    assert spool.next_batch(100, BIG) is None


def test_batch_holds_one_event_even_above_max_bytes(spool: SqliteSpool) -> None:
    spool.append(events(1, 2, pad=500), None)
    assert ids(spool.next_batch(10, 16)) == [1]


def test_seq_and_content_stable_across_reopen(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 9), None)
    sent = [spool.next_batch(3, BIG), spool.next_batch(3, BIG)]
    spool = reopen(spool, path)
    try:
        assert [spool.next_batch(100, BIG), spool.next_batch(100, BIG)] == sent
        fresh = spool.next_batch(100, BIG)
        assert fresh is not None
        assert (fresh.seq, ids(fresh)) == (3, [7, 8, 9])
    finally:
        spool.close()


def test_reset_inflight_resends_unacked_with_identical_content(spool: SqliteSpool) -> None:
    spool.append(events(1, 6), None)
    b1, b2 = spool.next_batch(3, BIG), spool.next_batch(3, BIG)
    assert b1 is not None
    assert b2 is not None
    spool.ack(b1.seq)
    spool.append(events(7, 8), None)
    spool.reset_inflight()
    assert spool.next_batch(100, BIG) == b2
    assert ids(spool.next_batch(100, BIG)) == [7, 8]


def test_batch_after_and_pending_batches(spool: SqliteSpool) -> None:
    spool.append(events(1, 6), None)
    b1, b2, b3 = (spool.next_batch(2, BIG) for _ in range(3))
    assert spool.batch_after(0, 2, BIG) == b1
    assert spool.batch_after(1, 2, BIG) == b2
    assert spool.batch_after(3, 2, BIG) is None
    assert list(spool.pending_batches()) == [b1, b2, b3]
    assert list(spool.pending_batches(after_seq=2)) == [b3]
    assert spool.next_batch(2, BIG) is None  # pending_batches did not move the cursor


def test_assigned_after_resends_and_assign_batch_only_cuts_new(spool: SqliteSpool) -> None:
    spool.append(events(1, 4), None)
    assert spool.assigned_after(0) is None
    b1 = spool.assign_batch(2, BIG)
    b2 = spool.assign_batch(2, BIG)
    assert spool.assign_batch(2, BIG) is None
    assert b2 is not None
    assert ids(b2) == [3, 4]
    assert spool.assigned_after(0) == b1
    assert spool.assigned_after(1) == b2
    assert spool.assigned_after(2) is None


def test_to_proto_carries_seq_and_events(spool: SqliteSpool) -> None:
    spool.append(events(1, 2), None)
    batch = spool.next_batch(10, BIG)
    assert batch is not None
    msg = batch.to_proto("web-01")
    assert (msg.agent_id, msg.seq, list(msg.events)) == ("web-01", 1, batch.events)
    assert msg.created_ns == batch.created_ns


# -- acknowledgements -----------------------------------------------------------------------


def test_ack_removes_batch_in_any_order_and_repeats_are_noops(spool: SqliteSpool) -> None:
    spool.append(events(1, 6), None)
    for _ in range(3):
        spool.next_batch(2, BIG)
    assert spool.ack(2) == 2
    assert spool.ack(2) == 0
    assert spool.ack(99) == 0
    spool.reset_inflight()
    assert [b.seq for b in iter(lambda: spool.next_batch(9, BIG), None)] == [1, 3]
    assert spool.ack(1) == 2
    assert spool.ack(3) == 2
    stats = spool.stats()
    assert (stats.events, stats.bytes, stats.assigned_batches) == (0, 0, 0)


def test_ack_through_removes_up_to_seq_and_keeps_the_rest(spool: SqliteSpool) -> None:
    spool.append(events(1, 8), None)
    for _ in range(3):
        spool.next_batch(2, BIG)
    assert spool.ack_through(2) == 4
    assert [b.seq for b in spool.pending_batches()] == [3]
    assert spool.ack_through(2) == 0
    assert spool.stats().events == 4  # batch 3 and the unassigned 7, 8


def test_ack_through_beyond_last_seq_moves_next_seq_past_it(spool: SqliteSpool) -> None:
    # The collector stored seqs this spool no longer knows (e.g. it was lost): reusing them
    # would make the collector discard new batches as duplicates.
    spool.append(events(1, 2), None)
    spool.ack_through(500)
    batch = spool.next_batch(10, BIG)
    assert batch is not None
    assert batch.seq == 501


def test_seq_never_reused_after_all_acked_and_compacted(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 4), None)
    for _ in range(2):
        batch = spool.next_batch(2, BIG)
        assert batch is not None
        spool.ack(batch.seq)
    spool.compact()
    spool = reopen(spool, path)
    try:
        spool.append(events(5, 5), None)
        batch = spool.next_batch(2, BIG)
        assert batch is not None
        assert batch.seq == 3
    finally:
        spool.close()


# -- checkpoints ----------------------------------------------------------------------------


def test_checkpoints_committed_with_events(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 3), Checkpoint("authlog", "inode=7:offset=300"))
    spool.append([], Checkpoint("fim", "scan=2"))
    spool.append(events(4, 4), Checkpoint("authlog", "inode=7:offset=400"))
    spool = reopen(spool, path)
    try:
        assert spool.checkpoints() == {"authlog": "inode=7:offset=400", "fim": "scan=2"}
        assert spool.stats().events == 4
    finally:
        spool.close()


def test_failed_append_stores_neither_events_nor_checkpoint(spool: SqliteSpool) -> None:
    spool.append(events(1, 1), Checkpoint("authlog", "1"))
    bad = Checkpoint("authlog", object())  # type: ignore[arg-type]  # fails after the inserts
    with pytest.raises(StorageError):
        spool.append(events(2, 3), bad)
    assert spool.checkpoints() == {"authlog": "1"}
    assert spool.stats().events == 1
    assert ids(spool.next_batch(10, BIG)) == [1]


# -- byte cap -------------------------------------------------------------------------------


def test_full_spool_drops_oldest_unassigned_never_assigned(path: Path) -> None:
    size = len(event(1).SerializeToString())
    with SqliteSpool(path, max_bytes=10 * size, clock_ns=FakeClock()) as spool:
        spool.append(events(1, 8), None)
        assigned = spool.next_batch(3, BIG)
        spool.append(events(9, 13), Checkpoint("src", "13"))  # 13 events, room for 10
        stats = spool.stats()
        assert (stats.events, stats.bytes) == (10, 10 * size)
        assert stats.drops == {DROP_SPOOL_FULL: 3}
        assert spool.checkpoints() == {"src": "13"}
        spool.reset_inflight()
        assert spool.next_batch(100, BIG) == assigned
        assert ids(spool.next_batch(100, BIG)) == [7, 8, 9, 10, 11, 12, 13]


def test_append_larger_than_free_space_drops_its_own_oldest(path: Path) -> None:
    size = len(event(1).SerializeToString())
    with SqliteSpool(path, max_bytes=4 * size, clock_ns=FakeClock()) as spool:
        spool.append(events(1, 3), None)
        spool.next_batch(10, BIG)  # 1..3 assigned: only one slot left for anything new
        spool.append(events(4, 6), Checkpoint("src", "6"))
        assert spool.stats().drops == {DROP_SPOOL_FULL: 2}
        assert ids(spool.next_batch(10, BIG)) == [6]
        assert spool.checkpoints() == {"src": "6"}


def test_drop_report_is_returned_once_and_survives_restart(path: Path) -> None:
    size = len(event(1).SerializeToString())
    spool = SqliteSpool(path, max_bytes=2 * size, clock_ns=FakeClock())
    assert spool.take_drop_report() is None
    spool.append(events(1, 5), None)
    spool = reopen(spool, path, max_bytes=2 * size)
    try:
        report = spool.take_drop_report()
        assert report is not None
        assert report.counts == {DROP_SPOOL_FULL: 3}
        assert report.first_ns <= report.last_ns
        assert [(d.source, d.reason, d.count) for d in report.to_proto()] == [
            ("spool", DROP_SPOOL_FULL, 3)
        ]
        assert spool.take_drop_report() is None
        assert spool.stats().drops == {DROP_SPOOL_FULL: 3}  # lifetime totals stay
    finally:
        spool.close()


# -- damage ---------------------------------------------------------------------------------


def test_not_a_database_is_quarantined_and_spool_starts_fresh(path: Path) -> None:
    path.write_bytes(b"this is not sqlite" * 500)
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as spool:
        report = spool.startup_report()
        assert report.durable
        (q,) = report.quarantined
        assert q.path == path
        assert "not a database" in q.reason
        (moved,) = q.moved_to  # SQLite merged and removed the WAL when it closed the file
        assert moved.name == "spool.db.corrupt-20231114T221320Z"
        assert moved.read_bytes().startswith(b"this is not sqlite")
        assert spool.stats().quarantined == 1
        spool.append(events(1, 1), None)
        assert ids(spool.next_batch(1, BIG)) == [1]


def test_repeated_quarantines_keep_every_copy(path: Path) -> None:
    for n in (1, 2):
        path.write_bytes(b"not a database" * 300)
        with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as spool:
            assert spool.stats().quarantined == n
    names = sorted(p.name for p in path.parent.iterdir() if ".corrupt-" in p.name)
    assert names == ["spool.db.corrupt-20231114T221320Z", "spool.db.corrupt-20231114T221320Z.1"]


def test_newer_schema_is_quarantined(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as spool:
        (q,) = spool.startup_report().quarantined
        assert "newer" in q.reason


def test_damaged_pages_are_quarantined(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 300, pad=200), None)
    spool.close()
    data = bytearray(path.read_bytes())
    for page in range(2, 8):
        data[page * 4096 : page * 4096 + 16] = b"\x5a" * 16
    path.write_bytes(bytes(data))
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        assert len(again.startup_report().quarantined) == 1
        assert again.stats().events == 0


def test_seq_keeps_increasing_after_quarantine(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 3), None)
    for _ in range(3):
        spool.next_batch(1, BIG)
    spool.close()
    path.write_bytes(b"\0garbage" * 100)
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        assert again.startup_report().quarantined
        again.append(events(4, 4), None)
        batch = again.next_batch(1, BIG)
        assert batch is not None
        assert batch.seq == 4


def test_seq_above_reserve_after_crash_and_quarantine(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 2), None)
    spool.next_batch(1, BIG)
    spool.next_batch(1, BIG)
    seq_file = path.with_name("spool.db.seq")
    reserved = seq_file.read_bytes()  # what kill -9 would leave: close() lowers it
    spool.close()
    seq_file.write_bytes(reserved)
    path.write_bytes(b"garbage" * 100)
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        again.append(events(3, 3), None)
        batch = again.next_batch(1, BIG)
        assert batch is not None
        assert batch.seq == 1 + SEQ_RESERVE + 1


def test_unreadable_seq_file_falls_back_to_database(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 2), None)
    spool.next_batch(1, BIG)
    spool.close()
    path.with_name("spool.db.seq").write_text("not a number")
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        again.next_batch(1, BIG)  # resend of seq 1
        batch = again.next_batch(1, BIG)
        assert batch is not None
        assert batch.seq == 2
    assert path.with_name("spool.db.seq").read_text().strip() == "2"


def _corrupt_rows(path: Path, *event_ids: int, decodable_crc: bool = False) -> None:
    garbage = b"\xff\xff\xff\xff"
    crc = zlib.crc32(garbage) if decodable_crc else 0
    with sqlite3.connect(path) as conn:
        for n in event_ids:
            conn.execute(
                "UPDATE events SET body = ?, crc = ? WHERE time_ns = ?",
                (garbage if decodable_crc else b"bitrot", crc, n),
            )
    conn.close()


def test_garbage_rows_are_skipped_and_counted(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 5), None)
    spool.close()
    _corrupt_rows(path, 2)  # checksum mismatch
    _corrupt_rows(path, 4, decodable_crc=True)  # checksum fine, protobuf refuses it
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        assert ids(again.next_batch(10, BIG)) == [1, 3, 5]
        stats = again.stats()
        assert stats.drops == {DROP_CORRUPT_EVENT: 2}
        assert stats.events == 3
        report = again.take_drop_report()
        assert report is not None
        assert report.counts == {DROP_CORRUPT_EVENT: 2}


def test_garbage_row_in_assigned_batch_is_dropped_once(spool: SqliteSpool, path: Path) -> None:
    spool.append(events(1, 4), None)
    spool.next_batch(2, BIG)
    spool.next_batch(2, BIG)
    spool.close()
    _corrupt_rows(path, 2, 3, 4)
    with SqliteSpool(path, max_bytes=BIG, clock_ns=FakeClock()) as again:
        first = again.next_batch(10, BIG)
        assert first is not None
        assert (first.seq, ids(first)) == (1, [1])
        assert again.next_batch(10, BIG) is None  # batch 2 lost every event
        again.reset_inflight()
        assert again.next_batch(10, BIG) == first
        assert again.stats().drops == {DROP_CORRUPT_EVENT: 3}
        assert again.ack(1) == 1
        assert again.stats().events == 0


def test_unopenable_spool_runs_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with SqliteSpool(blocker / "spool.db", max_bytes=BIG, clock_ns=FakeClock()) as spool:
        report = spool.startup_report()
        assert not report.durable
        assert report.detail
        spool.append(events(1, 2), Checkpoint("src", "2"))
        assert ids(spool.next_batch(10, BIG)) == [1, 2]


def test_stats_describe_the_spool(spool: SqliteSpool) -> None:
    assert spool.stats().oldest_event_ns is None
    spool.append(events(7, 9), None)
    spool.next_batch(2, BIG)
    stats = spool.stats()
    assert (stats.events, stats.bytes) == (3, 3 * len(event(7).SerializeToString()))
    assert (stats.assigned_batches, stats.assigned_events, stats.last_seq) == (1, 2, 1)
    assert stats.oldest_event_ns == 7
    assert (stats.drops, stats.quarantined) == ({}, 0)


def test_closed_spool_raises_storage_error(spool: SqliteSpool) -> None:
    spool.close()
    spool.close()
    with pytest.raises(StorageError):
        spool.append(events(1, 1), None)


# -- kill -9 --------------------------------------------------------------------------------

# Appends, batches, acks and resends at random, printing each step once it has returned, so
# the parent knows a lower bound of what is committed and which single step was in flight.
_CHILD = """
import random, sys
from pathlib import Path
from agent.sources.base import Checkpoint
from agent.spool import SqliteSpool
from canhgac.v1 import events_pb2

path, rng = Path(sys.argv[1]), random.Random(int(sys.argv[2]))
spool = SqliteSpool(path, max_bytes=1 << 30)
n = int(spool.checkpoints().get("src", "0"))
mine = [b.seq for b in spool.pending_batches()]

def say(*parts):
    sys.stdout.write(" ".join(map(str, parts)) + "\\n")
    sys.stdout.flush()

say("open", n)
while True:
    op = rng.random()
    if op < 0.45:
        k = rng.randint(1, 25)
        evs = [events_pb2.Event(id=str(i), time_ns=i, original="x" * rng.randint(0, 300))
               for i in range(n + 1, n + k + 1)]
        say("append-begin", n + k)
        spool.append(evs, Checkpoint("src", str(n + k)))
        n += k
        say("append-done", n)
    elif op < 0.75:
        b = spool.next_batch(rng.randint(1, 40), rng.randint(100, 8000))
        if b is not None:
            if b.seq not in mine:
                mine.append(b.seq)
            say("batch", b.seq, ",".join(e.id for e in b.events))
    elif op < 0.92 and mine:
        seq = rng.choice(mine)
        say("ack-begin", seq)
        spool.ack(seq)
        mine.remove(seq)
        say("ack-done", seq)
    elif op < 0.96 and mine:
        seq = rng.choice(mine)
        say("through-begin", seq)
        spool.ack_through(seq)
        mine = [s for s in mine if s > seq]
        say("through-done", seq)
    elif op < 0.99:
        spool.reset_inflight()
        say("reset")
    else:
        spool.compact()
        say("compact")
"""


class _CrashLedger:
    """What the parent knows from the child's output, across all kills."""

    def __init__(self) -> None:
        self.batches: dict[int, list[int]] = {}
        self.acked: set[int] = set()
        self.appended = 0
        self.maybe_appended: int | None = None
        self.maybe_acked: set[int] = set()

    def read(self, words: list[str]) -> None:
        kind, arg = words[0], words[1] if len(words) > 1 else ""
        if kind == "open":
            assert int(arg) == self.appended
        elif kind == "append-begin":
            self.maybe_appended = int(arg)
        elif kind == "append-done":
            self.appended, self.maybe_appended = int(arg), None
        elif kind == "batch":
            seq, content = int(arg), [int(x) for x in words[2].split(",")]
            if seq in self.batches:
                assert self.batches[seq] == content, f"seq {seq} resent with other events"
            else:
                assert seq > max(self.batches, default=0), f"seq {seq} reused or out of order"
                self.batches[seq] = content
        elif kind in ("ack-begin", "through-begin"):
            upto = int(arg)
            self.maybe_acked = {upto} if kind == "ack-begin" else set(range(1, upto + 1))
        elif kind == "ack-done":
            self.acked.add(int(arg))
            self.maybe_acked = set()
        elif kind == "through-done":
            self.acked.update(s for s in self.batches if s <= int(arg))
            self.maybe_acked = set()

    def check(self, path: Path) -> None:
        """Reopen after a kill: everything committed is delivered or stored, exactly once."""
        with SqliteSpool(path, max_bytes=1 << 30) as spool:
            pending = {b.seq: ids(b) for b in spool.pending_batches()}
            checkpoint = int(spool.checkpoints().get("src", "0"))
            with sqlite3.connect(path) as conn:
                stored = [
                    int(events_pb2.Event.FromString(body).id)
                    for (body,) in conn.execute("SELECT body FROM events ORDER BY id")
                ]
            conn.close()
        assert checkpoint in (self.appended, self.maybe_appended)
        self.appended, self.maybe_appended = checkpoint, None
        for seq, content in pending.items():
            assert seq not in self.acked
            if seq in self.batches:
                assert self.batches[seq] == content
            else:  # assigned, then killed before the child could print it
                assert seq > max(self.batches, default=0)
                self.batches[seq] = content
        for seq in self.batches.keys() - pending.keys() - self.acked:
            assert seq in self.maybe_acked, f"batch {seq} vanished without an ack"
            self.acked.add(seq)
        self.maybe_acked = set()
        delivered = [n for seq in sorted(self.acked) for n in self.batches[seq]]
        assert len(stored) == len(set(stored))
        assert sorted(delivered + stored) == list(range(1, checkpoint + 1))


@pytest.mark.integration
def test_kill_9_loses_and_duplicates_nothing(path: Path) -> None:
    rng = random.Random(20241122)
    ledger = _CrashLedger()
    kills = 0
    for _cycle in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(rng.randrange(1 << 30))],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for _ in range(rng.randint(2, 400)):
            line = child.stdout.readline()
            assert line, "child exited on its own"
            ledger.read(line.split())
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate()
        kills += child.returncode == -signal.SIGKILL
        # The child ran ahead of our reading; a torn last line counts as not printed.
        for line in rest.splitlines(keepends=True):
            if line.endswith("\n"):
                ledger.read(line.split())
        ledger.check(path)
    assert kills == 8
    assert ledger.appended > 0
    assert ledger.acked


# -- model-based ----------------------------------------------------------------------------

_CAP = 2_000


class SpoolModel(RuleBasedStateMachine):
    """The spool against a list-and-dict model: same batches, same seqs, same drops."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.path = self.dir / "spool.db"
        self.spool = SqliteSpool(self.path, max_bytes=_CAP, clock_ns=FakeClock())
        self.counter = itertools.count(1)
        self.appended: list[str] = []
        self.unassigned: deque[events_pb2.Event] = deque()
        self.assigned: dict[int, list[events_pb2.Event]] = {}
        self.acked: dict[int, list[events_pb2.Event]] = {}
        self.dropped: set[str] = set()
        self.unreported = 0
        self.last_seq = 0
        self.cursor = 0
        self.checkpoint: str | None = None

    def _size(self) -> int:
        stored = itertools.chain(self.unassigned, *self.assigned.values())
        return sum(len(e.SerializeToString()) for e in stored)

    @rule(pads=st.lists(st.integers(0, 400), max_size=8), with_checkpoint=st.booleans())
    def append(self, pads: list[int], with_checkpoint: bool) -> None:
        new = [event(next(self.counter), pad) for pad in pads]
        checkpoint = Checkpoint("src", new[-1].id if new else "none") if with_checkpoint else None
        self.spool.append(new, checkpoint)
        self.appended += [e.id for e in new]
        if checkpoint is not None:
            self.checkpoint = checkpoint.value
        excess = self._size() + sum(len(e.SerializeToString()) for e in new) - _CAP
        freed = 0
        while excess > 0 and self.unassigned and freed < excess:
            gone = self.unassigned.popleft()
            freed += len(gone.SerializeToString())
            self.dropped.add(gone.id)
        excess -= freed
        queue = deque(new)
        while queue and excess > 0:
            gone = queue.popleft()
            excess -= len(gone.SerializeToString())
            self.dropped.add(gone.id)
        self.unassigned.extend(queue)

    @rule(max_events=st.integers(1, 6), max_bytes=st.integers(1, 900))
    def next_batch(self, max_events: int, max_bytes: int) -> None:
        batch = self.spool.next_batch(max_events, max_bytes)
        resend = [seq for seq in sorted(self.assigned) if seq > self.cursor]
        if resend:
            assert batch is not None
            assert batch.seq == resend[0]
            assert batch.events == self.assigned[batch.seq]
        else:
            expected: list[events_pb2.Event] = []
            for e in self.unassigned:
                if expected and wire_size([*expected, e]) > max_bytes:
                    break
                expected.append(e)
                if len(expected) == max_events:
                    break
            if not expected:
                assert batch is None
                return
            assert batch is not None
            assert batch.seq == self.last_seq + 1
            assert batch.events == expected
            self.last_seq = batch.seq
            self.assigned[batch.seq] = expected
            for _ in expected:
                self.unassigned.popleft()
        assert batch.size_bytes == wire_size(batch.events)
        self.cursor = batch.seq

    @precondition(lambda self: self.assigned)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.assigned)))
        assert self.spool.ack(seq) == len(self.assigned[seq])
        self.acked[seq] = self.assigned.pop(seq)

    @rule(seq=st.integers(0, 1_000_000))
    def ack_unknown(self, seq: int) -> None:
        if seq not in self.assigned:
            assert self.spool.ack(seq) == 0

    @rule(data=st.data())
    def ack_through(self, data: st.DataObject) -> None:
        seq = data.draw(st.integers(0, self.last_seq + 2))
        done = [s for s in self.assigned if s <= seq]
        expected = sum(len(self.assigned[s]) for s in done)
        assert self.spool.ack_through(seq) == expected
        for s in done:
            self.acked[s] = self.assigned.pop(s)
        self.last_seq = max(self.last_seq, seq)

    @rule()
    def reset_inflight(self) -> None:
        self.spool.reset_inflight()
        self.cursor = 0

    @rule()
    def reopen(self) -> None:
        self.spool.close()
        self.spool = SqliteSpool(self.path, max_bytes=_CAP, clock_ns=FakeClock())
        self.cursor = 0

    @rule()
    def take_drop_report(self) -> None:
        report = self.spool.take_drop_report()
        pending = len(self.dropped) - self.unreported
        if pending:
            assert report is not None
            assert report.counts == {DROP_SPOOL_FULL: pending}
        else:
            assert report is None
        self.unreported = len(self.dropped)

    @invariant()
    def delivered_plus_stored_is_appended_minus_drops(self) -> None:
        # Acks arrive in any order, so delivered and stored batches interleave by seq.
        batches = self.acked | self.assigned
        in_batches = [e.id for seq in sorted(batches) for e in batches[seq]]
        survivors = [i for i in self.appended if i not in self.dropped]
        assert in_batches + [e.id for e in self.unassigned] == survivors
        stored = [e for b in self.assigned.values() for e in b] + list(self.unassigned)
        stats = self.spool.stats()
        assert stats.drops.get(DROP_SPOOL_FULL, 0) == len(self.dropped)
        assert (stats.events, stats.bytes) == (len(stored), self._size())
        assert (stats.assigned_batches, stats.last_seq) == (len(self.assigned), self.last_seq)
        assert self.spool.checkpoints().get("src") == self.checkpoint

    def teardown(self) -> None:
        try:
            # Drain: every surviving event reaches the collector once, in order.
            self.spool.reset_inflight()
            while (batch := self.spool.next_batch(50, 1 << 20)) is not None:
                self.spool.ack(batch.seq)
                self.acked[batch.seq] = batch.events
            seqs = sorted(self.acked)
            delivered = [e.id for seq in seqs for e in self.acked[seq]]
            assert delivered == [i for i in self.appended if i not in self.dropped]
            assert len(set(seqs)) == len(seqs)
        finally:
            self.spool.close()
            shutil.rmtree(self.dir)


SpoolModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_spool_matches_model = SpoolModel.TestCase
