"""Debouncing of real-time notifications: a burst on one path becomes one check."""

from __future__ import annotations

from dataclasses import dataclass

# A path written without pause is still checked after this many settle periods.
MAX_SETTLE_FACTOR = 10


@dataclass
class Pending:
    first: float
    last: float
    time_ns: int  # wall time of the first notification: the events' time


class SettleQueue:
    """Paths waiting for `settle` seconds of quiet (at most MAX_SETTLE_FACTOR x settle after
    the first notification). Renames pair a source and a destination, which are handed out
    together so the tracker sees the move as one."""

    def __init__(self, settle: float) -> None:
        self._settle = settle
        self._pending: dict[str, Pending] = {}
        self._renames: dict[str, str] = {}  # destination -> source

    def __bool__(self) -> bool:
        return bool(self._pending)

    def touch(self, path: str, now: float, now_ns: int) -> None:
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = Pending(first=now, last=now, time_ns=now_ns)
        else:
            entry.last = now

    def rename(self, source: str, destination: str) -> None:
        self._renames[destination] = source

    def _deadline(self, entry: Pending) -> float:
        return min(entry.last + self._settle, entry.first + self._settle * MAX_SETTLE_FACTOR)

    def next_deadline(self) -> float | None:
        return min((self._deadline(e) for e in self._pending.values()), default=None)

    def take_ready(self, now: float) -> tuple[dict[str, Pending], dict[str, str]]:
        """The settled paths (and their rename partners) and the renames among them."""
        ready = {p: e for p, e in self._pending.items() if self._deadline(e) <= now}
        renames = {d: s for d, s in self._renames.items() if d in ready or s in ready}
        for destination, source in renames.items():
            del self._renames[destination]
            for path in (destination, source):
                if path not in ready and path in self._pending:
                    ready[path] = self._pending[path]
        for path in ready:
            del self._pending[path]
        return ready, renames
