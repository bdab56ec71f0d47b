"""Which directories inotify watches, and what its records mean for the tracked paths."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .inotify import (
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Inotify,
    InotifyEvent,
)
from .roots import Scope, is_under
from .scanner import walk_dirs

# (directory, every entry matters, or the one entry name that matters)
PlannedWatch = tuple[str, bool, str | None]


@dataclass
class WatchedDir:
    path: str
    recursive: bool  # inside a directory root: every entry matters
    names: set[str] = field(default_factory=set)  # otherwise: only these entries

    def wants(self, name: str) -> bool:
        return self.recursive or name in self.names


@dataclass
class Intents:
    """What a batch of inotify records asks of the source."""

    files: list[str] = field(default_factory=list)  # paths to check
    renames: list[tuple[str, str]] = field(default_factory=list)  # (from, to) pairs seen
    trees: list[str] = field(default_factory=list)  # directories to set up, then re-scan
    overflow: bool = False


def plan_watches(target: str, root: str, scope: Scope) -> list[PlannedWatch]:
    """The watches that cover `target` (a root, or a directory inside a directory root).

    Blocking (it walks directories): run it in a thread. A directory is watched with its
    whole subtree; a file or a missing path through its nearest existing ancestor, for the
    name of the next path component, so its creation is seen.
    """
    if os.path.isdir(target) and not os.path.islink(target):
        return [(d, True, None) for d in walk_dirs(target, scope, lambda _reason: None)]
    if target != root:
        return []  # gone again; its parent's records say so
    child, parent = target, os.path.dirname(target)
    while parent != child and not os.path.isdir(parent):
        child, parent = parent, os.path.dirname(parent)
    return [(parent, False, os.path.basename(child))]


class WatchTable:
    """Watch descriptors <-> directories, and the translation of records into Intents.

    `limited` holds the directories a watch could not be added for because the kernel's
    watch limit (fs.inotify.max_user_watches) is reached: the periodic rescan covers them.
    """

    def __init__(self, inotify: Inotify, scope: Scope, count: Callable[[str], None]) -> None:
        self._inotify = inotify
        self._scope = scope
        self._count = count
        self._by_wd: dict[int, WatchedDir] = {}
        self._by_path: dict[str, int] = {}
        self.limited: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_wd)

    def add(self, planned: list[PlannedWatch]) -> None:
        for path, recursive, name in planned:
            wd = self._by_path.get(path)
            if wd is None:
                try:
                    wd = self._inotify.add_watch(path)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        self._count("watch_limit")
                        self.limited.add(path)
                        return  # the rest of this plan would fail the same way
                    if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                        self._count("watch_failed")
                    continue
                self.limited.discard(path)
                known = self._by_wd.get(wd)
                if known is not None:  # the same directory under another name (bind mount)
                    self._by_path.pop(known.path, None)
                self._by_wd[wd] = WatchedDir(path, recursive)
                self._by_path[path] = wd
            watched = self._by_wd[wd]
            watched.recursive = watched.recursive or recursive
            if name is not None:
                watched.names.add(name)

    def drop(self, top: str) -> None:
        """Stop watching `top` and everything under it (it moved away or is gone)."""
        for wd, watched in list(self._by_wd.items()):
            if is_under(watched.path, top):
                self._inotify.rm_watch(wd)
                self._forget(wd)
        self.limited = {p for p in self.limited if not is_under(p, top)}

    def _forget(self, wd: int) -> None:
        watched = self._by_wd.pop(wd, None)
        if watched is not None and self._by_path.get(watched.path) == wd:
            del self._by_path[watched.path]

    def translate(self, records: list[InotifyEvent]) -> Intents:
        out = Intents()
        moved_from: dict[int, str] = {}
        for rec in records:
            if rec.mask & IN_Q_OVERFLOW:
                out.overflow = True
                continue
            watched = self._by_wd.get(rec.wd)
            if watched is None:
                continue  # a watch already dropped
            if rec.mask & (IN_IGNORED | IN_MOVE_SELF):
                # The directory is gone or moved: whatever depended on it is set up again.
                self.drop(watched.path) if rec.mask & IN_MOVE_SELF else self._forget(rec.wd)
                out.trees.append(watched.path)
                continue
            if not rec.name or not watched.wants(rec.name):
                continue
            path = os.path.join(watched.path, rec.name)
            if rec.is_dir or (not watched.recursive and path not in self._scope.roots):
                if rec.mask & (IN_MOVED_FROM | IN_DELETE):
                    self.drop(path)
                if rec.mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE):
                    out.trees.append(path)
                continue
            out.files.append(path)
            if rec.mask & IN_MOVED_FROM:
                moved_from[rec.cookie] = path
            elif rec.mask & IN_MOVED_TO and rec.cookie in moved_from:
                out.renames.append((moved_from.pop(rec.cookie), path))
        return out
