"""Compares what is on disk with the baseline and moves the baseline forward.

Runs in a worker thread; the caller serialises calls (one at a time) and commits the store
after handing the returned changes to the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .baseline import BaselineStore, FileRecord
from .changes import Change, diff
from .roots import Scope
from .scanner import FileProber


class BaselineTracker:
    """The baseline's keeper.

    * `check(path)` reads the path in full (content hashed again) and is used for real-time
      notifications; `renamed_from` pairs a move inside the watched tree.
    * `scan(paths, generation, silent)` is the walk's step: content is re-read only when stat
      shows a change; `silent` records without reporting (a baseline being created).
    * `sweep(generation)` settles the paths a walk did not meet: gone -> "deleted"; no
      longer in scope (config changed, now excluded) -> forgotten without an event.
    * At most `max_files` paths are tracked; a new path beyond it is counted "file_limit".
    """

    def __init__(
        self,
        store: BaselineStore,
        prober: FileProber,
        scope: Scope,
        max_files: int,
        count: Callable[[str], None],
    ) -> None:
        self.store = store
        self.scope = scope
        self._prober = prober
        self._max_files = max_files
        self._count = count
        self._tracked = store.count()
        # Number of the scan under way (or last run): real-time updates count as seen by it.
        self.generation = 0
        self.recorded_silently = 0

    def new_generation(self) -> int:
        self.generation = self.store.next_generation()
        return self.generation

    def check(self, path: str, renamed_from: str | None = None) -> list[Change]:
        if not self.scope.tracks(path):
            self._forget(path)
            return []
        old = self.store.get(path)
        new = self._probe(path, None)
        source = self.store.get(renamed_from) if renamed_from else None
        if renamed_from is None or source is None or new is None:
            return self._apply(path, old, new, diff(path, old, new))
        # A move inside the tree: the source's record goes with it.
        self._forget(renamed_from)
        if old is None:
            moved = [Change("renamed", path, source, new, old_path=renamed_from)]
        else:  # an atomic replace of a tracked file (write a temporary file, rename it over)
            moved = [_with_old_path(c, renamed_from) for c in diff(path, old, new)]
        changes = self._apply(path, old, new, moved)
        return changes + self.check(renamed_from)  # in case something is there again

    def scan(self, paths: Iterable[str], generation: int, silent: bool) -> list[Change]:
        changes: list[Change] = []
        for path in paths:
            old = self.store.get(path)
            new = self._probe(path, old)
            if new is None:
                continue  # left to sweep(), which also reports it if it is gone
            if old is not None and new == old:
                self.store.mark_seen(path, generation)
                continue
            found = [] if silent else diff(path, old, new)
            if silent and old is None:
                self.recorded_silently += 1
            changes.extend(self._apply(path, old, new, found, generation))
        return changes

    def sweep(self, generation: int, under: str | None = None) -> list[Change]:
        changes: list[Change] = []
        for path in self.store.unseen(generation, under):
            if self.scope.tracks(path):
                changes.extend(self.check(path))
            else:
                self._forget(path)
        return changes

    def _probe(self, path: str, previous: FileRecord | None) -> FileRecord | None:
        probe = self._prober.probe(path, previous)
        if probe.note is not None:
            self._count(probe.note)
        return probe.record

    def _apply(
        self,
        path: str,
        old: FileRecord | None,
        new: FileRecord | None,
        changes: list[Change],
        generation: int | None = None,
    ) -> list[Change]:
        if new is None:
            self._forget(path)
            return changes if old is not None else []
        if old is None:
            if self._tracked >= self._max_files:
                self._count("file_limit")
                return []
            self._tracked += 1
        self.store.put(new, self.generation if generation is None else generation)
        return changes

    def _forget(self, path: str) -> None:
        if self.store.get(path) is not None:
            self.store.delete(path)
            self._tracked -= 1


def _with_old_path(change: Change, old_path: str) -> Change:
    return Change(change.action, change.path, change.old, change.new, old_path=old_path)
