"""Windows judged when they close, shared by the counting kinds (event_count, value_count).

With `lt`/`lte`/`eq`/`neq` a count can only be judged once its window is over: a window opens
at a group's first event and closes when that agent's events reach `start + timespan` (a later
event of any kind from the agent, see `advance()`). Open windows are kept per agent in a heap
of (end, key, start); a group evicted meanwhile leaves its entry behind, which is skipped when
popped and compacted away when the heap grows past twice `max_groups`.
"""

from __future__ import annotations

import heapq
from abc import abstractmethod
from typing import Any, Protocol, TypeVar

from collector.detection.correlation.base import GroupKey, WindowCorrelation, WindowHit


class _Windowed(Protocol):
    start: int


W = TypeVar("W", bound=_Windowed)


class ClosingWindows(WindowCorrelation[W]):
    """A WindowCorrelation whose non-eager windows close by the agent's time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Per agent, the open windows: a heap of (end, key, start).
        self._deadlines: dict[str, list[tuple[int, GroupKey, int]]] = {}

    @abstractmethod
    def _count(self, group: W) -> int:
        """The number the condition is judged on."""

    @abstractmethod
    def _hit(self, key: GroupKey, group: W) -> WindowHit: ...

    def advance(self, agent_id: str, time_ns: int) -> list[WindowHit]:
        """Note that `agent_id` has reached `time_ns`; close its windows that are over."""
        heap = self._deadlines.get(agent_id)
        hits: list[WindowHit] = []
        while heap and heap[0][0] < time_ns:
            _, key, start = heapq.heappop(heap)
            group = self._groups.get(key)
            if group is not None and group.start == start:
                del self._groups[key]
                if self._met(self._count(group)):
                    hits.append(self._hit(key, group))
        return hits

    def _open_window(self, key: GroupKey, t: int) -> W:
        """The group of `key`, with a window opened at `t` if it is new."""
        group, new = self._group(key)
        if new:
            group.start = t
            heap = self._deadlines.setdefault(key[0], [])
            heapq.heappush(heap, (t + self.timespan_ns, key, t))
            if len(heap) > 2 * self.max_groups:
                self._compact(key[0])
        return group

    def _compact(self, agent_id: str) -> None:
        # Evicted groups leave their deadlines behind; without this a spray of distinct keys
        # from one agent would grow the heap for a whole timespan despite max_groups.
        heap = [
            (g.start + self.timespan_ns, k, g.start)
            for k, g in self._groups.items()
            if k[0] == agent_id
        ]
        heapq.heapify(heap)
        self._deadlines[agent_id] = heap

    def _restored(self) -> None:
        self._deadlines = {}
        if self.eager:
            return
        for key, group in self._groups.items():
            self._deadlines.setdefault(key[0], []).append(
                (group.start + self.timespan_ns, key, group.start)
            )
        for heap in self._deadlines.values():
            heapq.heapify(heap)
