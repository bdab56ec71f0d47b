"""Sigma `value_count`: how many distinct values of one field a group has within the timespan.

E.g. one source address trying more than N distinct user names. On top of the shared
conventions in `base`, `ValueCountCorrelation` (a property test holds a brute-force twin):

* An event without the counted field adds no value (`valueless`) and opens no group.
* `gte`/`gt`: sliding window, as event_count: a value is in the window while its latest
  occurrence is no older than `timespan` before the group's newest event. The hit comes at
  once, the group is emptied and stays quiet for one timespan (`suppressed`); an event older
  than the window is `late`. The hit lists, per value, its latest event, oldest first.
* `lt`/`lte`/`eq`/`neq`: a window opens at the group's first event and is judged once the
  agent's time passes `start + timespan` (`advance()`). The hit lists each value's first event.
* Memory per group is bounded by the threshold: once a group holds `floor(value) + 1` distinct
  values every further value gives the same verdict, so no more are kept and the hit's count
  saturates there (relevant to `neq` only; the growing ops fire before).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from collector.detection.matchers import text


@dataclass(slots=True)
class _Group:
    values: dict[str, tuple[int, str]] = field(default_factory=dict)  # value -> (time, id)
    newest: int = 0
    start: int = 0
    quiet_until: int | None = None
    host: str = ""
    # Whether `values` is out of time order for the moment (an event came in out of order, or
    # a restored snapshot was); derived, not part of the saved state.
    disordered: bool = False


def _time_of(item: tuple[str, tuple[int, str]]) -> int:
    return item[1][0]


class ValueCountCorrelation(ClosingWindows[_Group]):
    """Counts distinct values of `value_field` per group key in a window (see module doc)."""

    kind = "value_count"

    def __init__(
        self,
        *,
        group_by: tuple[str, ...],
        timespan_ns: int,
        threshold: Threshold,
        value_field: str,
        max_groups: int = DEFAULT_MAX_GROUPS,
        aliases: Aliases | None = None,
    ) -> None:
        super().__init__(
            group_by=group_by,
            timespan_ns=timespan_ns,
            threshold=threshold,
            max_groups=max_groups,
            aliases=aliases,
        )
        self.value_field = value_field
        # The counted path when it does not depend on the rule matched (not an alias).
        self._value_path = None if value_field in self.aliases else value_field
        self.max_values = threshold.saturation
        self.valueless = 0

    def feed(
        self,
        time_ns: int,
        fields: Mapping[str, Any],
        rule_keys: Sequence[str] = (),
        keys: KeyCache | None = None,
    ) -> list[WindowHit]:
        """Count one matching event's value; return the hits it completes (usually none)."""
        key = self._key(fields, rule_keys, keys)
        if key is None:
            self.ungrouped += 1
            return []
        hits = [] if self.eager else self.advance(key[0], time_ns)
        path = self._value_path
        if path is None:
            path = self._field_of(self.value_field, rule_keys) or ""
        raw = fields.get(path)
        if raw is None:
            self.valueless += 1
            return hits
        value = raw if type(raw) is str else ",".join(raw) if type(raw) is list else text(raw)
        event_id, host = origin(fields)
        if self.eager:
            hit = self._feed_sliding(key, time_ns, value, event_id, host)
            return [] if hit is None else [hit]
        self._feed_tumbling(key, time_ns, value, event_id, host)
        return hits

    def _count(self, group: _Group) -> int:
        return len(group.values)

    def fields_read(self) -> frozenset[str]:
        return super().fields_read() | self._paths_of(self.value_field)

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), "field": self.value_field}

    def _new_group(self) -> _Group:
        return _Group()

    def _feed_sliding(
        self, key: GroupKey, t: int, value: str, event_id: str, host: str
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
        values = group.values
        if values and t < group.newest - self.timespan_ns:
            self.late += 1
            return None
        if not values or t > group.newest:
            group.newest = t
        group.host = host or group.host
        seen = values.get(value)
        if seen is None or t >= seen[0]:
            # Re-inserted so the dict stays in order of latest occurrence.
            if seen is not None:
                del values[value]
            if values and t < group.newest:
                group.disordered = True  # put back in time order below
            values[value] = (t, event_id)
        oldest = group.newest - self.timespan_ns
        if group.disordered:  # back in order of latest occurrence (a stable sort: ties stay)
            in_order = sorted(values.items(), key=_time_of)
            values.clear()
            values.update(e for e in in_order if e[1][0] >= oldest)
            group.disordered = False
        else:  # in time order: the stale values are those before the first one in the window
            stale: list[str] | None = None
            for v, (vt, _) in values.items():
                if vt >= oldest:
                    break
                if stale is None:
                    stale = [v]
                else:
                    stale.append(v)
            if stale:
                for v in stale:
                    del values[v]
        if not self._met(len(values)):
            return None
        hit = self._hit(key, group)
        group.quiet_until = group.newest + self.timespan_ns
        values.clear()
        return hit

    def _feed_tumbling(self, key: GroupKey, t: int, value: str, event_id: str, host: str) -> None:
        group = self._open_window(key, t)
        group.host = host or group.host
        if value not in group.values and len(group.values) < self.max_values:
            group.values[value] = (t, event_id)

    def _dump_group(self, group: _Group) -> dict[str, Any]:
        return {
            "values": [[v, t, i] for v, (t, i) in group.values.items()],
            "newest": group.newest,
            "start": group.start,
            "quiet_until": group.quiet_until,
            "host": group.host,
        }

    def _load_group(self, data: Mapping[str, Any]) -> _Group:
        values = {str(v): (int(t), str(i)) for v, t, i in data["values"]}
        if len(values) > self.max_values:
            raise ValueError("more distinct values than the condition needs")
        times = [t for t, _ in values.values()]
        return _Group(
            values=values,
            newest=int(data["newest"]),
            start=int(data["start"]),
            quiet_until=optional_int(data["quiet_until"]),
            host=str(data["host"]),
            disordered=times != sorted(times),
        )

    def _hit(self, key: GroupKey, group: _Group) -> WindowHit:
        seen = sorted(group.values.values(), key=lambda e: e[0])
        return WindowHit(
            agent_id=key[0],
            host=group.host,
            group=self._group_values(key),
            first_ns=seen[0][0] if seen else group.start,
            last_ns=seen[-1][0] if seen else group.start,
            event_ids=[i for _, i in seen[:MAX_EVENT_IDS]],
            count=len(seen),
        )
