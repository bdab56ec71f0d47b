"""Reading the file system: walking roots, and stat + sha256 of one path within a budget."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .baseline import FileRecord
from .roots import Scope

CHUNK_BYTES = 1024 * 1024


class StopRequestedError(Exception):
    """The source is stopping; the walk or hash in progress is abandoned."""


class ByteBudget:
    """A token bucket of bytes per second: `spend(n)` sleeps as long as needed so that, over
    any window of T seconds, at most rate * (T + burst_s) bytes pass (plus one call's worth).

    The clock and sleep are injected so tests count bytes against a fake clock.
    """

    def __init__(
        self,
        rate: int,
        *,
        burst_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._capacity = rate * burst_s
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def spend(self, n: int) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            self._sleep(-self._tokens / self.rate)


@dataclass(frozen=True)
class Probe:
    """What is at a path now. `record` is None when nothing trackable is there (missing, a
    directory, a special file); `note` names why content or the path could not be tracked."""

    record: FileRecord | None
    note: str | None = None


class FileProber:
    """stat + sha256 of single paths; content is read through the shared `budget`.

    Regular files are hashed (files above `max_file_bytes` get metadata only, note
    "too_large_to_hash"); symlinks are never followed, their hash is that of the link text;
    FIFOs, sockets and devices are not tracked (note "special_file"). Setting `stopping`
    makes a hash in progress raise StopRequestedError.
    """

    def __init__(
        self, budget: ByteBudget, max_file_bytes: int, stopping: threading.Event | None = None
    ) -> None:
        self._budget = budget
        self._max = max_file_bytes
        self._stopping = stopping or threading.Event()

    def probe(self, path: str, previous: FileRecord | None = None) -> Probe:
        """The path's state; with `previous` given, content is not read again when stat shows
        no change at all (the periodic and start-up scans)."""
        try:
            st = os.lstat(path)
        except OSError:
            return Probe(None)
        if stat.S_ISDIR(st.st_mode):
            return Probe(None)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(path)
            except OSError:
                return Probe(None)
            digest = hashlib.sha256(os.fsencode(target)).hexdigest()
            return Probe(_record(path, st, digest))
        if not stat.S_ISREG(st.st_mode):
            return Probe(None, "special_file")
        if previous is not None:
            quick = _record(path, st, previous.sha256)
            if quick.same_stat(previous):
                return Probe(quick)
        return self._hash(path, st)

    def _hash(self, path: str, st: os.stat_result) -> Probe:
        if st.st_size > self._max:
            return Probe(_record(path, st, ""), "too_large_to_hash")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return Probe(None)
        except OSError:
            return Probe(_record(path, st, ""), "unreadable")
        try:
            st = os.fstat(fd)  # the file actually read, if the path was swapped meanwhile
            if not stat.S_ISREG(st.st_mode):
                return Probe(None, "special_file")
            if st.st_size > self._max:
                return Probe(_record(path, st, ""), "too_large_to_hash")
            digest = hashlib.sha256()
            while chunk := os.read(fd, CHUNK_BYTES):
                if self._stopping.is_set():
                    raise StopRequestedError
                self._budget.spend(len(chunk))
                digest.update(chunk)
        except OSError:
            return Probe(_record(path, st, ""), "unreadable")
        finally:
            os.close(fd)
        return Probe(_record(path, st, digest.hexdigest()))


def _record(path: str, st: os.stat_result, sha256: str) -> FileRecord:
    return FileRecord(
        path=path,
        sha256=sha256,
        size=st.st_size,
        mode=st.st_mode,
        uid=st.st_uid,
        gid=st.st_gid,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        inode=st.st_ino,
    )


def walk_files(root: str, scope: Scope, on_error: Callable[[str], None]) -> Iterator[str]:
    """Every non-directory path at or under `root` that `scope` tracks, without following
    symlinks. A root that is not a directory yields itself if anything is there."""
    if not os.path.isdir(root) or os.path.islink(root):
        if os.path.lexists(root) and not scope.excluded(root):
            yield root
        return
    if scope.excluded(root):
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = [(e.path, e.is_dir(follow_symlinks=False)) for e in it]
        except FileNotFoundError:
            continue  # removed meanwhile; its events say so
        except OSError:
            on_error("unreadable_dir")
            continue
        entries.sort()
        for path, is_dir in entries:
            if not is_dir and not scope.excluded(path):
                yield path
        stack.extend(p for p, is_dir in reversed(entries) if is_dir and not scope.excluded(p))


def walk_dirs(root: str, scope: Scope, on_error: Callable[[str], None]) -> Iterator[str]:
    """`root` and every directory under it (not through symlinks), minus excluded ones."""
    if scope.excluded(root):
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        if not os.path.isdir(directory):
            continue
        yield directory
        try:
            with os.scandir(directory) as entries:
                subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            continue  # removed meanwhile; its events say so
        except OSError:
            on_error("unreadable_dir")
            continue
        stack.extend(sorted((d for d in subdirs if not scope.excluded(d)), reverse=True))
