"""Sigma `event_count`: how many matching events a group has within the timespan.

Semantics of `EventCountCorrelation` (a property test holds a brute-force twin of this), on
top of the shared conventions in `base`:

* `gte`/`gt` (the count can only grow into them) are checked on a sliding window: the events
  of the group no older than `timespan` before its newest event. When the condition holds the
  hit is produced at once, the window is emptied and the group stays quiet for one timespan
  (events in it are counted as `suppressed`), so a continuous flood gives one alert per window.
* `lt`/`lte`/`eq`/`neq` can only be judged once a window is over: a window opens at a group's
  first event and closes when that agent's events reach `start + timespan` (a later event of
  any kind from the agent, see `advance()`); the hit is produced then, if the count fits.
* An event older than the group's sliding window when it arrives is `late` and not counted.
* A syslog line folded as "message repeated N times" counts N (`weight_field`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canhgac import fields as vocabulary
from collector.detection.correlation.base import (
    DEFAULT_MAX_GROUPS,
    MAX_EVENT_IDS,
    Aliases,
    GroupKey,
    KeyCache,
    Threshold,
    WindowHit,
    optional_int,
    origin,
)
from collector.detection.correlation.closing import ClosingWindows


@dataclass(slots=True)
class _Group:
    entries: list[tuple[int, str, int]] = field(default_factory=list)  # (time, id, weight)
    total: int = 0
    start: int = 0
    quiet_until: int | None = None
    host: str = ""


def _entry_time(entry: tuple[int, str, int]) -> int:
    return entry[0]


class EventCountCorrelation(ClosingWindows[_Group]):
    """Counts events per group key in a window and reports the groups that meet the condition.

    Feed it, in arrival order, every event that matched one of the rule's base rules (once
    per event). State is bounded by `max_groups`; counters say what was left out.
    """

    kind = "event_count"

    def __init__(
        self,
        *,
        group_by: tuple[str, ...],
        timespan_ns: int,
        threshold: Threshold,
        max_groups: int = DEFAULT_MAX_GROUPS,
        weight_field: str | None = vocabulary.REPEAT_COUNT_FIELD,
        aliases: Aliases | None = None,
    ) -> None:
        super().__init__(
            group_by=group_by,
            timespan_ns=timespan_ns,
            threshold=threshold,
            max_groups=max_groups,
            aliases=aliases,
        )
        self.weight_field = weight_field

    def feed(
        self,
        time_ns: int,
        fields: Mapping[str, Any],
        rule_keys: Sequence[str] = (),
        keys: KeyCache | None = None,
    ) -> list[WindowHit]:
        """Count one matching event; return the hits it completes (usually none)."""
        key = self._key(fields, rule_keys, keys)
        if key is None:
            self.ungrouped += 1
            return []
        weight = self._weight(fields)
        event_id, host = origin(fields)
        if self.eager:
            hit = self._feed_sliding(key, time_ns, event_id, weight, host)
            return [] if hit is None else [hit]
        hits = self.advance(key[0], time_ns)
        self._feed_tumbling(key, time_ns, event_id, weight, host)
        return hits

    def _count(self, group: _Group) -> int:
        return group.total

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), "weight_field": self.weight_field}

    def fields_read(self) -> frozenset[str]:
        weight = () if self.weight_field is None else (self.weight_field,)
        return super().fields_read().union(weight)

    def _weight(self, fields: Mapping[str, Any]) -> int:
        if self.weight_field is None:
            return 1
        repeats = fields.get(self.weight_field)
        return repeats if type(repeats) is int and repeats > 1 else 1

    def _new_group(self) -> _Group:
        return _Group()

    def _feed_sliding(
        self, key: GroupKey, t: int, event_id: str, weight: int, host: str
    ) -> WindowHit | None:
        group = self._groups.get(key)  # _group()'s usual case written out
        if group is None:
            group, _ = self._group(key)
        else:
            self._groups.move_to_end(key)
        if group.quiet_until is not None:
            if t <= group.quiet_until:
                self.suppressed += 1
                return None
            group.quiet_until = None
        entries = group.entries
        if entries and t < entries[-1][0] - self.timespan_ns:
            self.late += 1
            return None
        if not entries or t >= entries[-1][0]:
            entries.append((t, event_id, weight))
        else:
            insort(entries, (t, event_id, weight), key=_entry_time)
        group.total += weight
        group.host = host or group.host
        oldest = entries[-1][0] - self.timespan_ns
        # Entries are in time order: the search only when the oldest has left the window.
        if entries[0][0] < oldest:
            cut = bisect_left(entries, oldest, key=_entry_time)
            group.total -= sum(e[2] for e in entries[:cut])
            del entries[:cut]
        if not self._met(group.total):
            return None
        hit = self._hit(key, group)
        group.quiet_until = entries[-1][0] + self.timespan_ns
        entries.clear()
        group.total = 0
        return hit

    def _feed_tumbling(self, key: GroupKey, t: int, event_id: str, weight: int, host: str) -> None:
        group = self._open_window(key, t)
        if len(group.entries) < MAX_EVENT_IDS:
            insort(group.entries, (t, event_id, weight), key=_entry_time)
        group.total += weight
        group.host = host or group.host

    def _dump_group(self, group: _Group) -> dict[str, Any]:
        return {
            "entries": [list(e) for e in group.entries],
            "total": group.total,
            "start": group.start,
            "quiet_until": group.quiet_until,
            "host": group.host,
        }

    def _load_group(self, data: Mapping[str, Any]) -> _Group:
        entries = [(int(t), str(i), int(w)) for t, i, w in data["entries"]]
        entries.sort(key=_entry_time)
        start = optional_int(data["start"])
        return _Group(
            entries=entries,
            total=int(data["total"]),
            start=0 if start is None else start,
            quiet_until=optional_int(data["quiet_until"]),
            host=str(data["host"]),
        )

    def _hit(self, key: GroupKey, group: _Group) -> WindowHit:
        entries = group.entries
        return WindowHit(
            agent_id=key[0],
            host=group.host,
            group=self._group_values(key),
            first_ns=entries[0][0] if entries else group.start,
            last_ns=entries[-1][0] if entries else group.start,
            event_ids=[e[1] for e in entries[:MAX_EVENT_IDS]],
            count=group.total,
        )
