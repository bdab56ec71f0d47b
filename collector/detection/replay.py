"""Run rules over stored events (`rules replay`): what the rules would raise for a past period.

Events are read in stored order (row id), filtered to the time range by their own time, and
fed to a fresh engine in chunks, so correlations see them in the order the collector did.
Nothing is written: the alerts are returned for the operator to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from canhgac.v1 import alert_pb2
from collector.config import CollectorConfig
from collector.detection.base import RuleLoadError
from collector.detection.engine import DetectionEngine

CHUNK = 5_000


@dataclass
class ReplayResult:
    events: int = 0
    alerts: list[alert_pb2.Alert] = field(default_factory=list)
    load_errors: list[RuleLoadError] = field(default_factory=list)


def replay(
    config: CollectorConfig,
    rule_paths: Sequence[Path | str],
    start_ns: int,
    end_ns: int,
    *,
    agent_id: str | None = None,
) -> ReplayResult:
    """Alerts the rules under `rule_paths` raise over events with start <= time < end."""
    from collector.app import open_configured_store

    if end_ns <= start_ns:
        raise ValueError("--to must be after --from")
    engine = DetectionEngine()
    result = ReplayResult(load_errors=engine.load(list(rule_paths)).errors)
    worker = open_configured_store(config)
    try:
        store = worker.store
        after = 0
        while True:
            rows = store.events(after_row=after, limit=CHUNK, agent_id=agent_id)
            if not rows:
                break
            after = rows[-1].row_id
            batch = [r.event for r in rows if start_ns <= r.event.time_ns < end_ns]
            result.events += len(batch)
            result.alerts.extend(engine.process(batch))
    finally:
        worker.close()
    return result
