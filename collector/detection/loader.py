"""Builds the detector the collector runs from the configured rule paths."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.detection import control
from collector.detection.base import LoadResult
from collector.detection.engine import DetectionEngine
from collector.detection.isolation import BatchDetector, ProcessDetector, ThreadDetector

log = logging.getLogger("canhgac.collector.detection")


def load_detector(
    rule_paths: Sequence[Path],
    clock_ns: Callable[[], int],
    isolation: str = "thread",
    on_restart: Callable[[], None] = lambda: None,
    state_path: Path | None = None,
) -> tuple[BatchDetector, LoadResult]:
    """Load every rule; a broken rule is logged and skipped, never fatal. The correlation
    state saved at `state_path` (if any) is taken up again.

    The rules are loaded here in any case, so that load errors are logged by the collector;
    with isolation "process" the child process loads the same files (and state) for itself.
    """
    engine = DetectionEngine(clock_ns=clock_ns)
    result = engine.load(rule_paths)
    for err in result.errors:
        log.error("rule not loaded: %s", err, extra={"fields": {"path": str(err.path)}})
    log.info(
        "rules loaded", extra={"fields": {"rules": result.loaded, "errors": len(result.errors)}}
    )
    if state_path is not None:
        restored = control.load_state(engine, state_path)
        if restored["error"]:
            log.error("correlation state not restored: %s", restored["error"])
        elif restored["restored"] or restored["dropped"]:
            log.info(
                "correlation state restored",
                extra={
                    "fields": {
                        "restored": len(restored["restored"]),
                        "dropped_changed_rules": restored["dropped"],
                    }
                },
            )
    if isolation == "process":
        return ProcessDetector(rule_paths, on_restart, state_path), result
    return ThreadDetector(engine, clock_ns), result
