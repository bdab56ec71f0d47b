"""The spool's SQLite schema, and opening a spool file with its health checked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from canhgac.errors import StorageError

SCHEMA_VERSION = 1

# events: AUTOINCREMENT because batches and the assigned/unassigned boundary are row id ranges;
# a reused row id (plain rowids restart below a deleted maximum) would slip a new event into an
# acknowledged range. The blob is the last column so scans of size skip its overflow pages.
# batches: seq -> its row id range, recorded before the batch is handed out.
# state: one row; counters live here so opening a large spool does not scan it.
_DDL = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE drops (
    reason TEXT PRIMARY KEY,
    total INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    first_ns INTEGER,
    last_ns INTEGER
);
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    assigned_through INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO state VALUES (1, 0, 0, 0, 0);
"""

_TABLES = {"events", "batches", "checkpoints", "drops", "state"}


class DamagedSpoolError(StorageError):
    """The spool file is not a database, fails its integrity check, or is not ours."""


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def open_database(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) a spool database in WAL mode with synchronous=FULL.

    Raises DamagedSpoolError when the file should be quarantined; other sqlite3.Error (locked,
    I/O, permissions) pass through, since moving a healthy file aside would lose its events.
    """
    location = str(path)
    conn = sqlite3.connect(location, isolation_level=None, check_same_thread=False)
    try:
        _prepare(conn, location)
    except sqlite3.Error as exc:
        conn.close()
        if _is_damage(exc):
            raise DamagedSpoolError(str(exc), location=location) from exc
        raise
    except DamagedSpoolError:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, location: str) -> None:
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode NORMAL may lose the last commits on power loss, and an event reported
    # to its source as spooled lets the source move its checkpoint past it.
    conn.execute("PRAGMA synchronous = FULL")
    # 512 KiB of page cache (SQLite's default is 2 MiB; it was 16): the spool is written at
    # its end and read in order, so its working set is a few B-tree paths; a larger cache
    # mostly holds pages already shipped, in the agent's memory while events flow (2.5 MB more
    # under 1,000 lines/s with 2 MiB; bench/footprint.py). Pages it evicts are read back from
    # the kernel's page cache.
    conn.execute("PRAGMA cache_size = -512")
    result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if result != ["ok"]:
        raise DamagedSpoolError(f"quick_check failed: {'; '.join(result[:3])}", location=location)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == 0 and not tables:
        conn.executescript(f"BEGIN; {_DDL} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        return
    if version > SCHEMA_VERSION:
        raise DamagedSpoolError(
            f"schema version {version} is newer than this agent ({SCHEMA_VERSION})",
            location=location,
        )
    if version != SCHEMA_VERSION or not tables >= _TABLES:
        raise DamagedSpoolError(
            f"not a spool database (version {version}, tables {sorted(tables)[:6]})",
            location=location,
        )
    if conn.execute("SELECT count(*) FROM state").fetchone()[0] != 1:
        raise DamagedSpoolError("spool state row is missing", location=location)
