"""What happens to alerts between the engine and the store, in the collector process.

1. **System and level.** The alert's agent belongs to an information system of the registry
   (by its agent id, host name or address among the system's assets, else the system its
   enrollment token named); the system's security level (1-5) is its approved level, else its
   proposed level, else `detection.system_levels`. Severity is raised by
   `detection.level_raise[level]` steps (default: one step at levels 4 and 5), never above
   critical: the same intrusion matters more on a level-4 system than on a level-1 one.
2. **Suppression.** An alert identical to one stored within `suppress_window_s` (same rule,
   agent, correlation group and summary) is not stored again; it is counted per rule
   (`canhgac_collector_alerts_suppressed`). Time is the events' own time, so a backlog
   suppresses as the live stream would have.
3. **Incidents.** Alerts of one system (or one host, when it belongs to no system) and one
   incident category that follow each other within `incident_window_s` share an
   `incident_id`, the unit the on-site team handles and reports.

State is bounded (`max_keys` entries per table, least recently used dropped first) and kept in
memory: after a restart the windows start empty (a repeated alert is stored once more).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from canhgac.ids import new_id
from canhgac.v1 import alert_pb2

K = TypeVar("K")
V = TypeVar("V")
NS: Final = 1_000_000_000
DEFAULT_MAX_KEYS: Final = 100_000


class _Bounded(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond `limit`."""

    def __init__(self, limit: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._limit:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class Suppressor:
    """`duplicate(alert)`: True when the same alert was let through within the window."""

    window_ns: int
    max_keys: int = DEFAULT_MAX_KEYS
    _seen: _Bounded[tuple[str, ...], int] = field(init=False)

    def __post_init__(self) -> None:
        self._seen = _Bounded(self.max_keys)

    def duplicate(self, alert: alert_pb2.Alert) -> bool:
        if self.window_ns <= 0:
            return False
        key = (
            alert.rule_id,
            alert.agent_id,
            *sorted(f"{k}={v}" for k, v in alert.group.items()),
            alert.summary,
        )
        when = alert.last_seen_ns or alert.created_ns
        first = self._seen.get(key)
        if first is not None and 0 <= when - first < self.window_ns:
            return True
        self._seen.put(key, when)
        return False


@dataclass
class IncidentGrouper:
    """Gives each alert the incident id of the open incident it belongs to, or a new one."""

    window_ns: int
    max_keys: int = DEFAULT_MAX_KEYS
    new_incident_id: Callable[[int], str] = new_id
    _open: _Bounded[tuple[str, str], tuple[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        self._open = _Bounded(self.max_keys)

    def assign(self, alert: alert_pb2.Alert) -> None:
        key = (alert.system_id or f"host:{alert.agent_id}", alert.category)
        start = alert.first_seen_ns or alert.created_ns
        end = max(alert.last_seen_ns, start)
        current = self._open.get(key)
        if current is not None and start - current[1] <= self.window_ns:
            incident, last = current
        else:
            incident, last = self.new_incident_id(start), end
        alert.incident_id = incident
        self._open.put(key, (incident, max(last, end)))


def raise_severity(
    severity: alert_pb2.Severity.ValueType, steps: int
) -> alert_pb2.Severity.ValueType:
    if severity == alert_pb2.SEVERITY_UNSPECIFIED or steps <= 0:
        return severity
    return alert_pb2.Severity.ValueType(min(alert_pb2.SEVERITY_CRITICAL, severity + steps))


# agent id -> (information system id or "", its security level or 0)
SystemOf = Callable[[str], Awaitable[tuple[str, int]]]


@dataclass
class AlertEnricher:
    """The three steps of the module docstring, in that order; an `Enricher` for the worker.

    `system_of(agent_id)` gives the agent's information system ("" when none) and its level
    (0 when unknown); it is asked at most once a minute per agent.
    """

    system_of: SystemOf
    level_raise: Mapping[int, int]
    suppressor: Suppressor
    incidents: IncidentGrouper
    on_suppressed: Callable[[alert_pb2.Alert], None] = lambda _alert: None
    monotonic: Callable[[], float] = time.monotonic
    _systems: dict[str, tuple[tuple[str, int], float]] = field(default_factory=dict)

    async def __call__(self, alerts: list[alert_pb2.Alert]) -> list[alert_pb2.Alert]:
        kept: list[alert_pb2.Alert] = []
        for alert in alerts:
            system, level = await self._system(alert.agent_id)
            alert.system_id = alert.system_id or system
            if alert.system_id != system:
                level = 0  # the alert names another system than the agent's: level unknown
            if level and not alert.system_level:
                alert.system_level = level
                alert.severity = raise_severity(alert.severity, self.level_raise.get(level, 0))
            if self.suppressor.duplicate(alert):
                self.on_suppressed(alert)
                continue
            self.incidents.assign(alert)
            kept.append(alert)
        return kept

    async def _system(self, agent_id: str) -> tuple[str, int]:
        now = self.monotonic()
        cached = self._systems.get(agent_id)
        if cached is not None and now - cached[1] < 60:
            return cached[0]
        system = await self.system_of(agent_id)
        if len(self._systems) > DEFAULT_MAX_KEYS:
            self._systems.clear()
        self._systems[agent_id] = (system, now)
        return system
