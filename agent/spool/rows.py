"""SQL over the spool's tables: event rows, batch ranges, checkpoints and drop counters.

No locking and no transactions here: SqliteSpool wraps every call in both.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from agent.sources.base import Checkpoint
from canhgac.v1 import events_pb2

BatchRow = tuple[int, int, int, int]  # seq, first_id, last_id, created_ns
BadRow = tuple[int, int]  # id, stored size


def wire_size(n: int) -> int:
    """Bytes an n-byte event takes inside EventBatch: tag, varint length, body."""
    return 1 + max(1, (n.bit_length() + 6) // 7) + n


def decode(body: bytes, crc: int) -> events_pb2.Event | None:
    """The stored event, or None when its checksum or its encoding is wrong.

    The checksum catches damage that still parses (protobuf accepts many byte strings).
    """
    if zlib.crc32(body) != crc:
        return None
    try:
        return events_pb2.Event.FromString(body)
    except DecodeError:
        return None


@dataclass(slots=True)
class Selection:
    """Events read for one batch, and the unreadable rows met on the way."""

    events: list[events_pb2.Event] = field(default_factory=list)
    size: int = 0  # encoded size inside an EventBatch
    stored_bytes: int = 0  # as counted against max_bytes
    first_id: int = 0
    last_id: int = 0
    consumed: int = 0  # highest row id looked at, readable or not
    bad: list[BadRow] = field(default_factory=list)

    def take(self, row_id: int, stored: int, event: events_pb2.Event, wire: int) -> None:
        self.events.append(event)
        self.size += wire
        self.stored_bytes += stored
        self.first_id = self.first_id or row_id
        self.last_id = self.consumed = row_id


def insert_events(
    conn: sqlite3.Connection, events: Sequence[events_pb2.Event], blobs: Sequence[bytes]
) -> int:
    """Insert events with their serialized blobs; returns the bytes stored."""
    conn.executemany(
        "INSERT INTO events (time_ns, size, crc, body) VALUES (?, ?, ?, ?)",
        [(e.time_ns, len(b), zlib.crc32(b), b) for e, b in zip(events, blobs, strict=True)],
    )
    return sum(map(len, blobs))


def save_checkpoint(conn: sqlite3.Connection, checkpoint: Checkpoint) -> None:
    conn.execute(
        "INSERT INTO checkpoints (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (checkpoint.key, checkpoint.value),
    )


def delete_oldest_unassigned(conn: sqlite3.Connection, after_id: int, need: int) -> tuple[int, int]:
    """Delete the oldest rows above `after_id` until `need` bytes are freed (or none are
    left); returns (rows deleted, bytes freed)."""
    freed = count = last_id = 0
    cur = conn.execute("SELECT id, size FROM events WHERE id > ? ORDER BY id", (after_id,))
    for row_id, size in cur:
        freed, count, last_id = freed + size, count + 1, row_id
        if freed >= need:
            break
    cur.close()
    if count:
        conn.execute("DELETE FROM events WHERE id > ? AND id <= ?", (after_id, last_id))
    return count, freed


def read_unassigned(
    conn: sqlite3.Connection, after_id: int, max_events: int, max_bytes: int
) -> Selection:
    """The oldest events above `after_id` that fit max_events and max_bytes (at least one)."""
    sel = Selection()
    cur = conn.execute(
        "SELECT id, size, crc, body FROM events WHERE id > ? ORDER BY id", (after_id,)
    )
    for row_id, stored, crc, body in cur:
        event = decode(body, crc)
        if event is None:
            sel.bad.append((row_id, stored))
            sel.consumed = row_id
            continue
        wire = wire_size(len(body))
        if sel.events and sel.size + wire > max_bytes:
            break
        sel.take(row_id, stored, event, wire)
        if len(sel.events) >= max_events:
            break
    cur.close()
    return sel


def read_range(conn: sqlite3.Connection, first_id: int, last_id: int) -> Selection:
    """Every event stored in an assigned batch's row range."""
    sel = Selection()
    for row_id, stored, crc, body in conn.execute(
        "SELECT id, size, crc, body FROM events WHERE id BETWEEN ? AND ? ORDER BY id",
        (first_id, last_id),
    ):
        event = decode(body, crc)
        if event is None:
            sel.bad.append((row_id, stored))
        else:
            sel.take(row_id, stored, event, wire_size(len(body)))
    return sel


def delete_rows(conn: sqlite3.Connection, rows: Sequence[BadRow]) -> None:
    conn.executemany("DELETE FROM events WHERE id = ?", [(r[0],) for r in rows])


def next_assigned(conn: sqlite3.Connection, after_seq: int) -> BatchRow | None:
    row: BatchRow | None = conn.execute(
        "SELECT seq, first_id, last_id, created_ns FROM batches WHERE seq > ? ORDER BY seq LIMIT 1",
        (after_seq,),
    ).fetchone()
    return row


def insert_batch(conn: sqlite3.Connection, seq: int, sel: Selection, created_ns: int) -> None:
    conn.execute(
        "INSERT INTO batches (seq, first_id, last_id, events, bytes, created_ns)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (seq, sel.first_id, sel.last_id, len(sel.events), sel.stored_bytes, created_ns),
    )


def shrink_batch(conn: sqlite3.Connection, seq: int, bad: Sequence[BadRow], empty: bool) -> None:
    """Account for rows of batch `seq` found unreadable; drop the batch if none are left."""
    if empty:
        conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
    else:
        conn.execute(
            "UPDATE batches SET events = events - ?, bytes = bytes - ? WHERE seq = ?",
            (len(bad), sum(r[1] for r in bad), seq),
        )


def count_drop(conn: sqlite3.Connection, reason: str, n: int, now_ns: int) -> None:
    """Add n drops to the lifetime total and to the pending (unreported) count."""
    conn.execute(
        "INSERT INTO drops (reason, total, pending, first_ns, last_ns) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (reason) DO UPDATE SET total = total + excluded.total,"
        " pending = pending + excluded.pending,"
        " first_ns = coalesce(first_ns, excluded.first_ns), last_ns = excluded.last_ns",
        (reason, n, n, now_ns, now_ns),
    )


def take_pending_drops(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
    """(reason, count, first_ns, last_ns) of unreported drops, now marked reported."""
    rows: list[tuple[str, int, int, int]] = conn.execute(
        "SELECT reason, pending, first_ns, last_ns FROM drops WHERE pending > 0"
    ).fetchall()
    if rows:
        conn.execute(
            "UPDATE drops SET pending = 0, first_ns = NULL, last_ns = NULL WHERE pending > 0"
        )
    return rows
