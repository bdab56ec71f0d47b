"""Builds the detector the collector runs from the configured rule paths."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.detection.engine import DetectionEngine

log = logging.getLogger("canhgac.collector.detection")


def load_detector(rule_paths: Sequence[Path], clock_ns: Callable[[], int]) -> DetectionEngine:
    """Load every rule; a broken rule is logged and skipped, never fatal."""
    engine = DetectionEngine(clock_ns=clock_ns)
    result = engine.load(rule_paths)
    for err in result.errors:
        log.error("rule not loaded: %s", err, extra={"fields": {"path": str(err.path)}})
    log.info(
        "rules loaded", extra={"fields": {"rules": result.loaded, "errors": len(result.errors)}}
    )
    return engine
