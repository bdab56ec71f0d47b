"""SqliteSpool: the agent's durable event spool in one SQLite file (see the package docstring)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from agent.sources.base import Checkpoint
from agent.spool import rows
from agent.spool.quarantine import count_quarantined, quarantine_spool
from agent.spool.reports import (
    DROP_CORRUPT_EVENT,
    DROP_SPOOL_FULL,
    DropReport,
    QuarantinedFile,
    SpoolBatch,
    SpoolStats,
    StartupReport,
)
from agent.spool.schema import DamagedSpoolError, open_database
from agent.spool.seqfile import read_seq_bound, write_seq_bound
from canhgac.errors import StorageError
from canhgac.v1 import events_pb2

log = logging.getLogger("canhgac.agent.spool")

# Seqs reserved per rewrite of the sidecar: one fsync+rename per this many batches.
SEQ_RESERVE = 1024


@dataclass(slots=True)
class _State:
    """The `state` row, mirrored in memory; changed on a copy and swapped in after COMMIT."""

    last_seq: int
    assigned_through: int  # highest event row id that belongs to an assigned batch
    events: int
    bytes: int


class SqliteSpool:
    """A crash-safe FIFO of events with stable, strictly increasing batch seqs.

    Contract: `append` is atomic with its checkpoint and durable when it returns. A batch is
    assigned (seq -> event range) durably before `next_batch`/`batch_after` return it, and the
    same seq always carries the same events until `ack`/`ack_through` removes it. Seqs are never
    reused, not after a restart, a compaction or a quarantine. Every event that does not reach the
    collector is counted by reason. Thread-safe; every method blocks on disk I/O, so call it
    from a worker thread. Database failures raise StorageError.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        clock_ns: Callable[[], int] = time.time_ns,
        seq_reserve: int = SEQ_RESERVE,
    ) -> None:
        if max_bytes < 1 or seq_reserve < 1:
            raise ValueError("max_bytes and seq_reserve must be positive")
        self._path = path
        self._seq_path = path.with_name(path.name + ".seq")
        self._max_bytes = max_bytes
        self._clock_ns = clock_ns
        self._seq_reserve = seq_reserve
        self._lock = threading.Lock()
        # Highest seq handed out by next_batch in this session: the in-memory resend cursor.
        self._cursor = 0
        self._closed = False
        self._conn, self._startup = self._open()
        row = self._conn.execute(
            "SELECT last_seq, assigned_through, events, bytes FROM state"
        ).fetchone()
        self._state = _State(*row)
        self._seq_bound = read_seq_bound(self._seq_path)
        # max(): a fresh or restored database must not restart below seqs already used.
        self._state.last_seq = max(self._state.last_seq, self._seq_bound)
        if self._seq_bound < self._state.last_seq:
            self._write_seq_bound(self._state.last_seq, strict=False)
        self._startup = replace(
            self._startup,
            events=self._state.events,
            assigned_batches=self._conn.execute("SELECT count(*) FROM batches").fetchone()[0],
            last_seq=self._state.last_seq,
        )

    def _open(self) -> tuple[sqlite3.Connection, StartupReport]:
        quarantined: list[QuarantinedFile] = []
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = open_database(self._path)
            except DamagedSpoolError as exc:
                quarantined.append(
                    quarantine_spool(self._path, now_ns=self._clock_ns(), reason=exc.message)
                )
                conn = open_database(self._path)
        except (sqlite3.Error, OSError, DamagedSpoolError) as exc:
            # Never block start-up: run from memory and say so loudly; sources keep working.
            log.error("cannot open spool %s (%s); spooling in memory only", self._path, exc)
            conn = open_database(":memory:")
            report = StartupReport(False, tuple(quarantined), 0, 0, 0, detail=str(exc))
            return conn, report
        return conn, StartupReport(True, tuple(quarantined), 0, 0, 0)

    # -- writing ---------------------------------------------------------------------------

    def append(self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None) -> None:
        """Store `events` and move `checkpoint` in one durable transaction.

        When the spool would pass max_bytes, the oldest unassigned events are dropped first,
        then the oldest of `events` itself; the checkpoint moves either way (the drops are
        counted and reported, the source must not re-read them).
        """
        blobs = [e.SerializeToString() for e in events]
        if not blobs and checkpoint is None:
            return
        with self._lock, self._guard(), self._transaction() as st:
            excess = st.bytes + sum(map(len, blobs)) - self._max_bytes
            if excess > 0:
                count, freed = rows.delete_oldest_unassigned(
                    self._conn, st.assigned_through, excess
                )
                self._forget(st, DROP_SPOOL_FULL, count, freed)
                excess -= freed
            dropped = 0
            while dropped < len(blobs) and excess > 0:
                excess -= len(blobs[dropped])
                dropped += 1
            self._forget(st, DROP_SPOOL_FULL, dropped, None)
            st.bytes += rows.insert_events(self._conn, events[dropped:], blobs[dropped:])
            st.events += len(blobs) - dropped
            if checkpoint is not None:
                rows.save_checkpoint(self._conn, checkpoint)

    def _forget(self, st: _State, reason: str, count: int, stored_bytes: int | None) -> None:
        """Count `count` events lost for `reason`; `stored_bytes` None if never stored."""
        if count:
            if stored_bytes is not None:
                st.events -= count
                st.bytes -= stored_bytes
            rows.count_drop(self._conn, reason, count, self._clock_ns())

    # -- batches ---------------------------------------------------------------------------

    def next_batch(self, max_events: int, max_bytes: int) -> SpoolBatch | None:
        """The next batch to send in this session, or None when there is nothing to send.

        Assigned but unacknowledged batches come first, in seq order and with their original
        content (after opening, every such batch is returned once; see `reset_inflight`).
        Then a new batch is assigned from the oldest unassigned events.
        """
        with self._lock:
            batch = self._batch_after(self._cursor, max_events, max_bytes)
            if batch is not None:
                self._cursor = batch.seq
            return batch

    def batch_after(self, after_seq: int, max_events: int, max_bytes: int) -> SpoolBatch | None:
        """Like next_batch, with the caller keeping the cursor: the first assigned batch with
        a seq above `after_seq`, else a newly assigned one."""
        with self._lock:
            return self._batch_after(after_seq, max_events, max_bytes)

    def assigned_after(self, after_seq: int) -> SpoolBatch | None:
        """The first assigned, unacknowledged batch with a seq above `after_seq` (a resend),
        or None; never assigns."""
        with self._lock, self._guard():
            return self._assigned_after(after_seq)

    def assign_batch(self, max_events: int, max_bytes: int) -> SpoolBatch | None:
        """Assign a new batch from the oldest unassigned events (None if there are none),
        whatever is still unacknowledged. For callers that pace new batches themselves."""
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        with self._lock, self._guard():
            return self._assign(max_events, max_bytes)

    def reset_inflight(self) -> None:
        """Forget what this session handed out: `next_batch` starts again at the oldest
        unacknowledged batch. Call after a reconnect (after `ack_through` with the collector's
        last stored seq); the spool itself only knows assigned versus acknowledged."""
        with self._lock:
            self._cursor = 0

    def pending_batches(self, after_seq: int = 0) -> Iterator[SpoolBatch]:
        """Every assigned, unacknowledged batch above `after_seq`, in seq order, loaded one at
        a time (the lock is not held between batches). Does not move the session cursor."""
        while True:
            with self._lock, self._guard():
                row = rows.next_assigned(self._conn, after_seq)
                batch = None if row is None else self._load_batch(row)
            if row is None:
                return
            after_seq = row[0]
            if batch is not None:
                yield batch

    def _batch_after(self, after_seq: int, max_events: int, max_bytes: int) -> SpoolBatch | None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        with self._guard():
            return self._assigned_after(after_seq) or self._assign(max_events, max_bytes)

    def _assigned_after(self, after_seq: int) -> SpoolBatch | None:
        # Skips batches whose every event turned out unreadable (_load_batch deleted them).
        while (row := rows.next_assigned(self._conn, after_seq)) is not None:
            batch = self._load_batch(row)
            if batch is not None:
                return batch
            after_seq = row[0]
        return None

    def _load_batch(self, row: rows.BatchRow) -> SpoolBatch | None:
        """Load an assigned batch. Rows that became unreadable are deleted and counted (once);
        a batch left with no events is deleted and None returned."""
        seq, first_id, last_id, created_ns = row
        sel = rows.read_range(self._conn, first_id, last_id)
        if sel.bad:
            with self._transaction() as st:
                self._remove_corrupt(st, sel.bad)
                rows.shrink_batch(self._conn, seq, sel.bad, empty=not sel.events)
        return SpoolBatch(seq, sel.events, sel.size, created_ns) if sel.events else None

    def _assign(self, max_events: int, max_bytes: int) -> SpoolBatch | None:
        with self._transaction() as st:
            sel = rows.read_unassigned(self._conn, st.assigned_through, max_events, max_bytes)
            self._remove_corrupt(st, sel.bad)
            if not sel.events:
                return None
            seq = st.last_seq + 1
            created_ns = self._clock_ns()
            self._raise_seq_bound(seq)
            rows.insert_batch(self._conn, seq, sel, created_ns)
            st.last_seq = seq
            st.assigned_through = max(st.assigned_through, sel.consumed)
        return SpoolBatch(seq, sel.events, sel.size, created_ns)

    def _remove_corrupt(self, st: _State, bad: list[rows.BadRow]) -> None:
        if bad:
            rows.delete_rows(self._conn, bad)
            self._forget(st, DROP_CORRUPT_EVENT, len(bad), sum(r[1] for r in bad))
            log.warning("spool %s: %d unreadable events skipped", self._path, len(bad))

    # -- acknowledgements ------------------------------------------------------------------

    def ack(self, seq: int) -> int:
        """Remove an acknowledged batch; returns how many events it held (0 for an unknown or
        already acknowledged seq, which is not an error)."""
        with self._lock, self._guard():
            row = self._conn.execute(
                "SELECT first_id, last_id, events, bytes FROM batches WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return 0
            first_id, last_id, n, size = row
            with self._transaction(sync=False) as st:
                self._conn.execute(
                    "DELETE FROM events WHERE id BETWEEN ? AND ?", (first_id, last_id)
                )
                self._conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                st.events -= n
                st.bytes -= size
            return int(n)

    def ack_through(self, seq: int) -> int:
        """Remove every assigned batch up to `seq` (the collector's last stored seq on connect);
        returns the number of events removed. A `seq` above the last one assigned here (a lost
        spool) raises the next seq past it, so new batches are not taken for duplicates."""
        with self._lock, self._guard(), self._transaction() as st:
            last_id, n, size = self._conn.execute(
                "SELECT max(last_id), coalesce(sum(events), 0), coalesce(sum(bytes), 0)"
                " FROM batches WHERE seq <= ?",
                (seq,),
            ).fetchone()
            if last_id is not None:
                # Batch ranges grow with seq, so every row up to last_id is in an acked batch.
                self._conn.execute("DELETE FROM events WHERE id <= ?", (last_id,))
                self._conn.execute("DELETE FROM batches WHERE seq <= ?", (seq,))
                st.events -= n
                st.bytes -= size
            if seq > st.last_seq:
                self._raise_seq_bound(seq)
                st.last_seq = seq
            return int(n)

    # -- reading ---------------------------------------------------------------------------

    def checkpoints(self) -> dict[str, str]:
        """Every source's last committed checkpoint, by key."""
        with self._lock, self._guard():
            return dict(self._conn.execute("SELECT key, value FROM checkpoints").fetchall())

    def stats(self) -> SpoolStats:
        """Counts for metrics and AgentStatus (lifetime drop totals, not the pending report)."""
        with self._lock, self._guard():
            batches, assigned = self._conn.execute(
                "SELECT count(*), coalesce(sum(events), 0) FROM batches"
            ).fetchone()
            oldest = self._conn.execute("SELECT time_ns FROM events ORDER BY id LIMIT 1").fetchone()
            drops = dict(self._conn.execute("SELECT reason, total FROM drops").fetchall())
            return SpoolStats(
                events=self._state.events,
                bytes=self._state.bytes,
                assigned_batches=batches,
                assigned_events=assigned,
                oldest_event_ns=None if oldest is None else oldest[0],
                last_seq=self._state.last_seq,
                drops=drops,
                quarantined=count_quarantined(self._path) if self._startup.durable else 0,
            )

    def take_drop_report(self) -> DropReport | None:
        """Drops since the last report, or None; each drop is reported once. Take it when the
        report can be sent (ideally appended to this spool as an AgentStatus event)."""
        with self._lock, self._guard(), self._transaction():
            pending = rows.take_pending_drops(self._conn)
        if not pending:
            return None
        return DropReport(
            counts={r[0]: r[1] for r in pending},
            first_ns=min(r[2] for r in pending),
            last_ns=max(r[3] for r in pending),
        )

    def startup_report(self) -> StartupReport:
        """What opening found: quarantined files and why, recovered batches, memory fallback."""
        return self._startup

    # -- maintenance -----------------------------------------------------------------------

    def compact(self) -> None:
        """Give freed pages back to the file system (VACUUM); seqs and row ids are unaffected."""
        with self._lock, self._guard():
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the database; the seq sidecar is lowered to the exact last seq."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                # Lenient: if this fails the old, higher bound stays, which is still safe.
                self._write_seq_bound(self._state.last_seq, strict=False)
            finally:
                self._conn.close()

    def __enter__(self) -> SqliteSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _raise_seq_bound(self, seq: int) -> None:
        # Written before the COMMIT that makes `seq` used: the sidecar never lags the database.
        if seq > self._seq_bound:
            self._write_seq_bound(seq + self._seq_reserve, strict=True)

    def _write_seq_bound(self, value: int, *, strict: bool) -> None:
        try:
            write_seq_bound(self._seq_path, value)
        except OSError as exc:
            if strict and self._startup.durable:
                raise StorageError(
                    f"cannot write seq file: {exc}", location=str(self._seq_path)
                ) from exc
            log.warning("cannot write spool seq file %s: %s", self._seq_path, exc)
        self._seq_bound = value

    @contextmanager
    def _transaction(self, *, sync: bool = True) -> Iterator[_State]:
        """BEGIN IMMEDIATE ... COMMIT around a copy of the state, swapped in once committed.

        sync=False commits without waiting for the disk: for acks only, since losing one to a
        power cut just resends a batch the collector then deduplicates. The WAL keeps commit
        order, so the next synced commit makes it durable too.
        """
        st = replace(self._state)
        if not sync:
            self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield st
                self._conn.execute(
                    "UPDATE state SET last_seq = ?, assigned_through = ?, events = ?, bytes = ?",
                    (st.last_seq, st.assigned_through, st.events, st.bytes),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                # Roll back on anything (cancellation too), then re-raise.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        finally:
            if not sync:
                self._conn.execute("PRAGMA synchronous = FULL")
        self._state = st

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(str(exc), location=str(self._path)) from exc
