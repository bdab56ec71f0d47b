"""Sigma correlation rules as bounded, durable in-memory state, one module per type.

`base` holds what all kinds share (group keys with `agent.id`, event time, the LRU group
table, counters, snapshot/restore); `event_count`, `value_count` and `temporal` (both temporal
kinds) hold one kind each; `registry` builds them from pySigma rules by type name.
"""

from collector.detection.correlation.base import (
    DEFAULT_MAX_GROUPS,
    MAX_EVENT_IDS,
    NS_PER_S,
    KeyCache,
    Threshold,
    WindowCorrelation,
    WindowHit,
)
from collector.detection.correlation.event_count import EventCountCorrelation
from collector.detection.correlation.registry import (
    CORRELATION_TYPES,
    AnyCorrelation,
    build_correlation,
    referenced_rules,
)
from collector.detection.correlation.temporal import TemporalCorrelation
from collector.detection.correlation.value_count import ValueCountCorrelation

__all__ = [
    "CORRELATION_TYPES",
    "DEFAULT_MAX_GROUPS",
    "MAX_EVENT_IDS",
    "NS_PER_S",
    "AnyCorrelation",
    "EventCountCorrelation",
    "KeyCache",
    "TemporalCorrelation",
    "Threshold",
    "ValueCountCorrelation",
    "WindowCorrelation",
    "WindowHit",
    "build_correlation",
    "referenced_rules",
]
