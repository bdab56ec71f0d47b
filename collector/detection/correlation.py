"""Sigma correlation rules as bounded in-memory state.

Only `event_count` is implemented (CORRELATION_TYPES); `value_count` and the temporal kinds are
refused with a RuleError so the loader reports them instead of running them wrongly.

Semantics of `EventCountCorrelation` (the property test holds a brute-force twin of this):

* Events are grouped by the rule's `group-by` fields plus `agent.id`. The agent is always part
  of the key so a rule behaves the same in the embedded wiring and in scale-out, where
  detection workers are partitioned by agent and never see another agent's events. An event
  missing a group-by field is not counted (`ungrouped`).
* Time is the events' own time (`@timestamp`), never the collector's clock, so a backlog an
  agent ships after an outage is judged as it happened.
* `gte`/`gt` (the count can only grow into them) are checked on a sliding window: the events
  of the group no older than `timespan` before its newest event. When the condition holds the
  hit is produced at once, the window is emptied and the group stays quiet for one timespan
  (events in it are counted as `suppressed`), so a continuous flood gives one alert per window.
* `lt`/`lte`/`eq`/`neq` can only be judged once a window is over: a window opens at a group's
  first event and closes when that agent's events reach `start + timespan` (a later event of
  any kind from the agent, see `advance()`); the hit is produced then, if the count fits.
* An event older than the group's sliding window when it arrives is `late` and not counted.
* At most `max_groups` groups are kept; the least recently fed one is evicted (`evictions`).
* A syslog line folded as "message repeated N times" counts N (`weight_field`).
"""

from __future__ import annotations

import heapq
import operator
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule

from canhgac import fields as vocabulary
from canhgac.errors import RuleError
from collector.detection.base import rule_error
from collector.detection.matchers import text

DEFAULT_MAX_GROUPS: Final = 100_000
MAX_EVENT_IDS: Final = 100
NS_PER_S: Final = 1_000_000_000

_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "neq": operator.ne,
}
# Conditions a growing count can only enter, never leave: decided as soon as they hold.
_EAGER_OPS: Final = frozenset({"gte", "gt"})


@dataclass(frozen=True)
class Threshold:
    """`count <op> value`, with op one of gte, gt, lte, lt, eq, neq."""

    op: str
    value: int | float

    def met(self, count: int) -> bool:
        return _OPS[self.op](count, self.value)


@dataclass(frozen=True)
class WindowHit:
    """A group whose window met the condition: what an alert is built from."""

    agent_id: str
    host: str
    group: dict[str, str]
    first_ns: int
    last_ns: int
    event_ids: list[str]
    count: int


@dataclass(slots=True)
class _Group:
    entries: list[tuple[int, str, int]] = field(default_factory=list)  # (time, id, weight)
    total: int = 0
    start: int = 0
    quiet_until: int | None = None
    host: str = ""


def _entry_time(entry: tuple[int, str, int]) -> int:
    return entry[0]


class EventCountCorrelation:
    """Counts events per group key in a window and reports the groups that meet the condition.

    Feed it, in arrival order, the fields of every event that matched one of the rule's base
    rules (once per event). State is bounded by `max_groups`; counters say what was left out.
    """

    def __init__(
        self,
        *,
        group_by: tuple[str, ...],
        timespan_ns: int,
        threshold: Threshold,
        max_groups: int = DEFAULT_MAX_GROUPS,
        weight_field: str | None = vocabulary.REPEAT_COUNT_FIELD,
    ) -> None:
        if timespan_ns <= 0 or max_groups <= 0:
            raise ValueError("timespan and max_groups must be positive")
        if threshold.op not in _OPS:
            raise RuleError(f"unsupported correlation condition operator '{threshold.op}'")
        self.group_by = group_by
        self.timespan_ns = timespan_ns
        self.threshold = threshold
        self.max_groups = max_groups
        self.weight_field = weight_field
        self.eager = threshold.op in _EAGER_OPS
        self._groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()
        # Per agent, the open windows of the tumbling mode: a heap of (end, key, start).
        self._deadlines: dict[str, list[tuple[int, tuple[str, ...], int]]] = {}
        self.evictions = 0
        self.late = 0
        self.suppressed = 0
        self.ungrouped = 0

    def __len__(self) -> int:
        return len(self._groups)

    def feed(self, time_ns: int, fields: Mapping[str, Any]) -> list[WindowHit]:
        """Count one matching event; return the hits it completes (usually none)."""
        key = self._key(fields)
        if key is None:
            self.ungrouped += 1
            return []
        weight = self._weight(fields)
        event_id = str(fields.get("event.id", ""))
        host = str(fields.get("host.name", ""))
        if self.eager:
            hit = self._feed_sliding(key, time_ns, event_id, weight, host)
            return [] if hit is None else [hit]
        hits = self.advance(key[0], time_ns)
        self._feed_tumbling(key, time_ns, event_id, weight, host)
        return hits

    def advance(self, agent_id: str, time_ns: int) -> list[WindowHit]:
        """Note that `agent_id` has reached `time_ns`; close its windows that are over."""
        heap = self._deadlines.get(agent_id)
        hits: list[WindowHit] = []
        while heap and heap[0][0] < time_ns:
            _, key, start = heapq.heappop(heap)
            group = self._groups.get(key)
            if group is not None and group.start == start:
                del self._groups[key]
                hit = self._close(key, group)
                if hit is not None:
                    hits.append(hit)
        return hits

    def _key(self, fields: Mapping[str, Any]) -> tuple[str, ...] | None:
        parts = [str(fields.get("agent.id", ""))]
        for name in self.group_by:
            value = fields.get(name)
            if value is None:
                return None
            parts.append(",".join(value) if type(value) is list else text(value))
        return tuple(parts)

    def _weight(self, fields: Mapping[str, Any]) -> int:
        if self.weight_field is None:
            return 1
        repeats = fields.get(self.weight_field)
        return repeats if type(repeats) is int and repeats > 1 else 1

    def _group(self, key: tuple[str, ...]) -> tuple[_Group, bool]:
        group = self._groups.get(key)
        if group is not None:
            self._groups.move_to_end(key)
            return group, False
        if len(self._groups) >= self.max_groups:
            self._groups.popitem(last=False)
            self.evictions += 1
        group = self._groups[key] = _Group()
        return group, True

    def _feed_sliding(
        self, key: tuple[str, ...], t: int, event_id: str, weight: int, host: str
    ) -> WindowHit | None:
        group, _ = self._group(key)
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
        cut = bisect_left(entries, entries[-1][0] - self.timespan_ns, key=_entry_time)
        if cut:
            group.total -= sum(e[2] for e in entries[:cut])
            del entries[:cut]
        if not self.threshold.met(group.total):
            return None
        hit = self._hit(key, group)
        group.quiet_until = entries[-1][0] + self.timespan_ns
        entries.clear()
        group.total = 0
        return hit

    def _feed_tumbling(
        self, key: tuple[str, ...], t: int, event_id: str, weight: int, host: str
    ) -> None:
        group, new = self._group(key)
        if new:
            group.start = t
            heap = self._deadlines.setdefault(key[0], [])
            heapq.heappush(heap, (t + self.timespan_ns, key, t))
            if len(heap) > 2 * self.max_groups:
                self._compact(key[0])
        if len(group.entries) < MAX_EVENT_IDS:
            insort(group.entries, (t, event_id, weight), key=_entry_time)
        group.total += weight
        group.host = host or group.host

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

    def _close(self, key: tuple[str, ...], group: _Group) -> WindowHit | None:
        return self._hit(key, group) if self.threshold.met(group.total) else None

    def _hit(self, key: tuple[str, ...], group: _Group) -> WindowHit:
        entries = group.entries
        return WindowHit(
            agent_id=key[0],
            host=group.host,
            group=dict(zip(self.group_by, key[1:], strict=True)),
            first_ns=entries[0][0] if entries else group.start,
            last_ns=entries[-1][0] if entries else group.start,
            event_ids=[e[1] for e in entries[:MAX_EVENT_IDS]],
            count=group.total,
        )


def event_count_from_sigma(rule: SigmaCorrelationRule, *, max_groups: int) -> EventCountCorrelation:
    """Build from a pySigma SigmaCorrelationRule of type event_count."""
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise rule_error("extended correlation conditions are unsupported", rule)
    op = condition.op.name.lower()
    group_by = tuple(rule.group_by or ())
    for name in group_by:
        if not vocabulary.is_known_field(name):
            raise rule_error(f"unknown group-by field '{name}'", rule)
    if len(rule.aliases):
        raise rule_error("correlation field aliases are unsupported", rule)
    try:
        return EventCountCorrelation(
            group_by=group_by,
            timespan_ns=int(rule.timespan.seconds) * NS_PER_S,
            threshold=Threshold(op, condition.count),
            max_groups=max_groups,
        )
    except RuleError as exc:
        raise rule_error(exc.message, rule) from exc


# Correlation kinds by Sigma type name; add value_count and temporal here.
CORRELATION_TYPES: Final[Mapping[str, Callable[..., EventCountCorrelation]]] = {
    "event_count": event_count_from_sigma,
}


def build_correlation(
    rule: SigmaCorrelationRule, *, max_groups: int = DEFAULT_MAX_GROUPS
) -> EventCountCorrelation:
    """The runtime correlation for a pySigma correlation rule; RuleError if unsupported."""
    kind = rule.type.name.lower()
    build = CORRELATION_TYPES.get(kind)
    if build is None:
        raise rule_error(f"unsupported correlation type '{kind}'", rule)
    return build(rule, max_groups=max_groups)
