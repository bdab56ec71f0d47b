"""The file-integrity baseline: what each tracked path looked like when last checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BASELINE_FILE = "fim-baseline.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS roots (path TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
_COLUMNS = "path, sha256, size, mode, uid, gid, mtime_ns, ctime_ns, inode"
_SELECT = f"SELECT {_COLUMNS} FROM files WHERE path = ?"  # noqa: S608  # constant text
_UPSERT = f"INSERT OR REPLACE INTO files ({_COLUMNS}, seen) VALUES ({', '.join('?' * 10)})"  # noqa: S608


@dataclass(frozen=True)
class FileRecord:
    """One path's state. `sha256` is "" when the content was not hashed (too large,
    unreadable); for a symlink it is the hash of the link target text."""

    path: str
    sha256: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    def same_stat(self, other: FileRecord) -> bool:
        """True when nothing stat(2) reports differs: content is then taken as unchanged
        (a write always moves ctime, which user space cannot set back)."""
        return (
            self.size == other.size
            and self.mtime_ns == other.mtime_ns
            and self.ctime_ns == other.ctime_ns
            and self.inode == other.inode
            and self.mode == other.mode
            and self.uid == other.uid
            and self.gid == other.gid
        )


class BaselineStore:
    """The baseline in SQLite (WAL) under `state_dir`, or in memory when it is None.

    Not thread-safe: the caller serialises access, but may use it from any one thread at a
    time. Writes are grouped in a transaction that the caller ends with `commit()` once the
    events describing them are handed over, so a crash in between repeats events rather than
    losing them. `seen` is the number of the last scan that found the path; a scan asks
    `unseen(generation)` for the paths it did not find.
    """

    def __init__(self, state_dir: Path | None) -> None:
        target = ":memory:" if state_dir is None else str(state_dir / BASELINE_FILE)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        # 256 KiB of page cache, not SQLite's 2 MiB: a scan reads each row once by its path,
        # and the file's pages stay in the kernel's page cache between scans, so a larger
        # cache would only hold the whole baseline in the agent's steady memory (issue 4).
        self._db.execute("PRAGMA cache_size = -256")
        if state_dir is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._in_tx = False

    def close(self) -> None:
        if self._in_tx:
            self._db.execute("ROLLBACK")
            self._in_tx = False
        self._db.close()

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def get(self, path: str) -> FileRecord | None:
        row = self._db.execute(_SELECT, (path,)).fetchone()
        return None if row is None else FileRecord(*row)

    def put(self, record: FileRecord, seen: int = 0) -> None:
        self._begin()
        self._db.execute(
            _UPSERT,
            (
                record.path,
                record.sha256,
                record.size,
                record.mode,
                record.uid,
                record.gid,
                record.mtime_ns,
                record.ctime_ns,
                record.inode,
                seen,
            ),
        )

    def mark_seen(self, path: str, seen: int) -> None:
        self._begin()
        self._db.execute("UPDATE files SET seen = ? WHERE path = ?", (seen, path))

    def delete(self, path: str) -> None:
        self._begin()
        self._db.execute("DELETE FROM files WHERE path = ?", (path,))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    def unseen(self, generation: int, under: str | None = None) -> list[str]:
        """Paths last seen before scan `generation` (optionally only at or under `under`)."""
        if under is None:
            rows = self._db.execute("SELECT path FROM files WHERE seen < ?", (generation,))
        else:
            prefix = under.rstrip("/") + "/"
            rows = self._db.execute(
                "SELECT path FROM files WHERE seen < ? AND (path = ? OR (path >= ? AND path < ?))",
                (generation, under, prefix, prefix[:-1] + "0"),
            )
        return [r[0] for r in rows]

    def paths(self) -> Iterator[str]:
        for (path,) in self._db.execute("SELECT path FROM files").fetchall():
            yield path

    def next_generation(self) -> int:
        """A scan number larger than every one handed out before (persisted)."""
        current = int(self.get_meta("generation") or "0") + 1
        self.set_meta("generation", str(current))
        return current

    def roots(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT path FROM roots")}

    def add_root(self, path: str) -> None:
        self._begin()
        self._db.execute("INSERT OR IGNORE INTO roots (path) VALUES (?)", (path,))

    def remove_root(self, path: str) -> None:
        self._begin()
        self._db.execute("DELETE FROM roots WHERE path = ?", (path,))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._begin()
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
