"""What every correlation kind shares: thresholds, hits, group keys, the group table, state.

Conventions all kinds keep (each kind's module states the rest):

* A group key is `agent.id` followed by the rule's `group-by` values. The agent is always part
  of it so a rule behaves the same in the embedded wiring and in scale-out, where detection
  workers are partitioned by agent and never see another agent's events. An event missing a
  group-by field is not counted (`ungrouped`). With Sigma `aliases`, a group-by name that is an
  alias is read from the field the alias maps the matched base rule to.
* Time is the events' own time (`@timestamp`), never the collector's clock.
* At most `max_groups` groups are kept; the least recently fed one is evicted (`evictions`).
* `snapshot()` is JSON-able and carries a fingerprint of the rule's definition; `restore()`
  refuses (returns False, state left empty) a snapshot taken under another definition, and
  raises ValueError for one it cannot read. Counters are not part of the state: they describe
  this process's work and restart at zero like every other metric.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Generic, TypeVar

from canhgac.errors import RuleError
from collector.detection.matchers import text

DEFAULT_MAX_GROUPS: Final = 100_000
MAX_EVENT_IDS: Final = 100
NS_PER_S: Final = 1_000_000_000

OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "neq": operator.ne,
}
# The same with the operands swapped, for `partial(op, value)(count)`: `count >= value` is
# `value <= count`.
_SWAPPED: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gte": operator.le,
    "gt": operator.lt,
    "lte": operator.ge,
    "lt": operator.gt,
    "eq": operator.eq,
    "neq": operator.ne,
}
# Conditions a growing count can only enter, never leave: decided as soon as they hold.
EAGER_OPS: Final = frozenset({"gte", "gt"})

GroupKey = tuple[str, ...]
# One event's group keys by group-by (None: a group-by field is missing), see `feed`.
KeyCache = dict[tuple[str, ...], "GroupKey | None"]
NOT_CACHED: Final[GroupKey] = ()  # not in a KeyCache yet (a key has at least the agent)
# Alias name -> {rule reference key -> field that rule's events carry the value in}.
Aliases = Mapping[str, Mapping[str, str]]


def origin(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The event id and host name a window keeps of each event it counts, as text."""
    event_id = fields.get("event.id", "")
    if type(event_id) is not str:
        event_id = str(event_id)
    host = fields.get("host.name", "")
    if type(host) is not str:
        host = str(host)
    return event_id, host


@dataclass(frozen=True)
class Threshold:
    """`count <op> value`, with op one of gte, gt, lte, lt, eq, neq."""

    op: str
    value: int | float

    def met(self, count: int) -> bool:
        return OPS[self.op](count, self.value)

    @property
    def saturation(self) -> int:
        """A count from which every larger count gets the same verdict: no need to count on."""
        return max(math.floor(self.value) + 1, 1)


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


G = TypeVar("G")


class WindowCorrelation(ABC, Generic[G]):
    """Base of the correlation kinds: group keys, the bounded group table, counters, state.

    `feed(time_ns, fields, rule_keys)` takes one event that matched at least one of the rule's
    base rules, with the reference keys (as listed in the correlation's `rules`) of every
    referenced rule it matched, and returns the hits it completes. `advance(agent_id, time_ns)`
    tells a kind that judges closed windows (`eager` False) that the agent's time moved on.
    """

    kind: str  # the Sigma correlation type

    def __init__(
        self,
        *,
        group_by: tuple[str, ...],
        timespan_ns: int,
        threshold: Threshold,
        max_groups: int = DEFAULT_MAX_GROUPS,
        aliases: Aliases | None = None,
    ) -> None:
        if timespan_ns <= 0 or max_groups <= 0:
            raise ValueError("timespan and max_groups must be positive")
        if threshold.op not in OPS:
            raise RuleError(f"unsupported correlation condition operator '{threshold.op}'")
        self.group_by = group_by
        self.timespan_ns = timespan_ns
        self.threshold = threshold
        self.max_groups = max_groups
        self.aliases: dict[str, dict[str, str]] = {
            name: dict(mapping) for name, mapping in (aliases or {}).items()
        }
        self.eager = threshold.op in EAGER_OPS
        # threshold.met without its look-up of the operator, for the per-event paths.
        self._met: Callable[[int], bool] = partial(_SWAPPED[threshold.op], threshold.value)
        # Whether the group key depends on which referenced rule matched (an aliased group-by
        # name); if not, one key serves every rule, and correlations with the same group-by
        # share it through `feed`'s `keys` (built once per event).
        self._key_by_rule = any(name in self.aliases for name in group_by)
        # The one group-by name of the usual rule (`group-by: [source.ip]`), for _plain_key.
        self._single_name = group_by[0] if len(group_by) == 1 else None
        self._groups: OrderedDict[GroupKey, G] = OrderedDict()
        self.evictions = 0
        self.late = 0
        self.suppressed = 0
        self.ungrouped = 0

    def __len__(self) -> int:
        return len(self._groups)

    @property
    def groups(self) -> int:
        """How many groups are held now (a gauge)."""
        return len(self._groups)

    @abstractmethod
    def feed(
        self,
        time_ns: int,
        fields: Mapping[str, Any],
        rule_keys: Sequence[str] = (),
        keys: KeyCache | None = None,
    ) -> list[WindowHit]:
        """Take one matching event; return the hits it completes (usually none).

        `keys`, if given, is a cache of this event's group keys by group-by (see `_key`), shared
        by the correlations the event feeds; it must be new for each event.
        """

    def fields_read(self) -> frozenset[str]:
        """Every field path `feed` may read. The engine computes only the paths its rules and
        correlations read, so a kind that reads another path must list it here."""
        paths = {"agent.id", "event.id", "host.name"}
        for name in self.group_by:
            paths.update(self._paths_of(name))
        return frozenset(paths)

    def _paths_of(self, name: str) -> set[str]:
        # What `_field_of(name, ...)` can return, for any rule key.
        mapping = self.aliases.get(name)
        return {name} if mapping is None else set(mapping.values())

    def advance(self, agent_id: str, time_ns: int) -> list[WindowHit]:
        """Note that `agent_id` has reached `time_ns`; return the hits of windows now over."""
        del agent_id, time_ns
        return []

    # --- durable state ----------------------------------------------------------------------

    def definition(self) -> dict[str, Any]:
        """What the state's meaning depends on; a change of any of it invalidates the state."""
        return {
            "type": self.kind,
            "group_by": list(self.group_by),
            "aliases": {k: dict(sorted(v.items())) for k, v in sorted(self.aliases.items())},
            "timespan_ns": self.timespan_ns,
            "condition": [self.threshold.op, self.threshold.value],
        }

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def snapshot(self) -> dict[str, Any]:
        """The groups (least recently fed first) as JSON-able data, with the fingerprint."""
        return {
            "fingerprint": self.fingerprint,
            "groups": [[list(key), self._dump_group(g)] for key, g in self._groups.items()],
        }

    def restore(self, data: Mapping[str, Any]) -> bool:
        """Replace the groups with a snapshot's; False (and no state) if the rule changed.

        Raises ValueError when the snapshot cannot be read; the state is then left empty.
        Beyond `max_groups`, the least recently fed groups of the snapshot are dropped.
        """
        self._groups = OrderedDict()
        self._restored()
        if data.get("fingerprint") != self.fingerprint:
            return False
        groups: OrderedDict[GroupKey, G] = OrderedDict()
        try:
            for raw_key, raw_group in list(data["groups"])[-self.max_groups :]:
                key = tuple(raw_key)
                if len(key) != len(self.group_by) + 1 or not all(type(k) is str for k in key):
                    raise ValueError(f"bad group key {raw_key!r}")
                groups[key] = self._load_group(raw_group)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"unreadable {self.kind} state: {exc}") from exc
        self._groups = groups
        self._restored()
        return True

    @abstractmethod
    def _dump_group(self, group: G) -> dict[str, Any]: ...

    @abstractmethod
    def _load_group(self, data: Mapping[str, Any]) -> G: ...

    def _restored(self) -> None:
        """Rebuild whatever is derived from the groups (called after they were replaced)."""

    # --- groups -----------------------------------------------------------------------------

    @abstractmethod
    def _new_group(self) -> G: ...

    def _key(
        self,
        fields: Mapping[str, Any],
        rule_keys: Sequence[str] = (),
        keys: KeyCache | None = None,
    ) -> GroupKey | None:
        if self._key_by_rule:
            return self._aliased_key(fields, rule_keys)
        if keys is None:
            return self._plain_key(fields)
        group_by = self.group_by
        key = keys.get(group_by, NOT_CACHED)
        if key is NOT_CACHED:
            key = keys[group_by] = self._plain_key(fields)
        return key

    def _plain_key(self, fields: Mapping[str, Any]) -> GroupKey | None:
        # The key of a group-by without aliases: the same paths whichever rule matched.
        agent = fields.get("agent.id", "")
        if type(agent) is not str:
            agent = str(agent)
        single = self._single_name
        if single is not None:
            value = fields.get(single)
            if value is None:
                return None
            if type(value) is not str:
                value = ",".join(value) if type(value) is list else text(value)
            return (agent, value)
        parts = [agent]
        for name in self.group_by:
            value = fields.get(name)
            if value is None:
                return None
            parts.append(",".join(value) if type(value) is list else text(value))
        return tuple(parts)

    def _aliased_key(self, fields: Mapping[str, Any], rule_keys: Sequence[str]) -> GroupKey | None:
        parts = [str(fields.get("agent.id", ""))]
        for name in self.group_by:
            path = self._field_of(name, rule_keys)
            value = None if path is None else fields.get(path)
            if value is None:
                return None
            parts.append(",".join(value) if type(value) is list else text(value))
        return tuple(parts)

    def _field_of(self, name: str, rule_keys: Sequence[str]) -> str | None:
        mapping = self.aliases.get(name)
        if mapping is None:
            return name
        for rule_key in rule_keys:
            path = mapping.get(rule_key)
            if path is not None:
                return path
        return None

    def _group(self, key: GroupKey) -> tuple[G, bool]:
        group = self._groups.get(key)
        if group is not None:
            self._groups.move_to_end(key)
            return group, False
        if len(self._groups) >= self.max_groups:
            self._groups.popitem(last=False)
            self.evictions += 1
        group = self._groups[key] = self._new_group()
        return group, True

    def _group_values(self, key: GroupKey) -> dict[str, str]:
        return dict(zip(self.group_by, key[1:], strict=True))


def optional_int(value: Any) -> int | None:
    """Read an int-or-null from restored state, refusing anything else."""
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def timed_ids(raw: Any) -> list[tuple[int, str]]:
    """Read a list of [time, event id] pairs from restored state."""
    out: list[tuple[int, str]] = []
    for t, event_id in raw:
        if type(t) is not int:
            raise ValueError(f"expected an integer time, got {t!r}")
        out.append((t, str(event_id)))
    return out
