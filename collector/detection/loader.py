"""Builds the detector the collector runs from the configured rule paths."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.detection.engine import DetectionEngine
from collector.detection.isolation import BatchDetector, ProcessDetector, ThreadDetector

log = logging.getLogger("canhgac.collector.detection")


def load_detector(
    rule_paths: Sequence[Path],
    clock_ns: Callable[[], int],
    isolation: str = "thread",
    on_restart: Callable[[], None] = lambda: None,
) -> BatchDetector:
    """Load every rule; a broken rule is logged and skipped, never fatal.

    The rules are loaded here in any case, so that load errors are logged by the collector;
    with isolation "process" the child process loads the same files again for itself.
    """
    engine = DetectionEngine(clock_ns=clock_ns)
    result = engine.load(rule_paths)
    for err in result.errors:
        log.error("rule not loaded: %s", err, extra={"fields": {"path": str(err.path)}})
    log.info(
        "rules loaded", extra={"fields": {"rules": result.loaded, "errors": len(result.errors)}}
    )
    if isolation == "process":
        return ProcessDetector(rule_paths, on_restart)
    return ThreadDetector(engine)
