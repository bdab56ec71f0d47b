"""What the detector does besides running batches: reload rules, keep correlation state on
disk, and report on itself. Each operation runs where the engine lives (the detection thread or
the child process) in the same first-in-first-out order as the batches, so a reload happens
between two batches and no event is evaluated twice or skipped.

* `reload`: a new engine loads the rule paths; the correlation state of every rule whose
  definition did not change moves over; then it replaces the old engine. A rule that no longer
  loads is reported and left out; the others run on.
* `save_state` writes `export_state()` as JSON to a file atomically (a temporary file, fsync,
  rename), so a crash never leaves half a file; `load_state` reads it back at start.
* `stats` counts rules and correlation state for the collector's metrics.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.detection.base import RuleLoadError
from collector.detection.engine import DetectionEngine
from collector.detection.ruleset import read_rule_files, rule_id


@dataclass(frozen=True)
class CorrelationStats:
    groups: int
    evictions: int
    late: int
    suppressed: int
    ungrouped: int


@dataclass(frozen=True)
class EngineStats:
    """A picklable account of the engine, for metrics."""

    rules: int
    correlations: dict[str, CorrelationStats] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleInfo:
    """One rule that loaded, for the console's rules page."""

    rule_id: str
    title: str
    level: str
    path: str


@dataclass(frozen=True)
class ReloadSummary:
    loaded: int
    errors: list[str]
    state_kept: list[str]  # correlation rules whose windows carried over
    state_dropped: list[str]  # correlation rules whose definition changed
    rules: list[RuleInfo] = field(default_factory=list)  # those that loaded, by file


def describe_rules(
    rule_paths: Sequence[Path | str], errors: Sequence[RuleLoadError]
) -> list[RuleInfo]:
    """The rules under `rule_paths` that parse, minus those `errors` name, sorted by file."""
    failed = {(e.path, e.rule_id) for e in errors}
    return sorted(
        (
            RuleInfo(
                rule_id(rule),
                str(rule.title),
                rule.level.name.lower() if rule.level is not None else "",
                str(path),
            )
            for path, rule in read_rule_files(rule_paths).rules
            if (str(path), rule_id(rule)) not in failed
        ),
        key=lambda r: (r.path, r.rule_id),
    )


def build_engine(
    rule_paths: Sequence[Path | str], clock_ns: Callable[[], int] = time.time_ns
) -> tuple[DetectionEngine, list[str]]:
    engine = DetectionEngine(clock_ns=clock_ns)
    result = engine.load(list(rule_paths))
    return engine, [str(e) for e in result.errors]


def reload(
    engine: DetectionEngine,
    rule_paths: Sequence[Path | str],
    clock_ns: Callable[[], int] = time.time_ns,
) -> tuple[DetectionEngine, ReloadSummary]:
    new = DetectionEngine(clock_ns=clock_ns)
    result = new.load(list(rule_paths))
    imported = new.import_state(engine.export_state())
    summary = ReloadSummary(
        loaded=stats(new).rules,
        errors=[str(e) for e in result.errors],
        state_kept=imported.restored,
        state_dropped=imported.dropped,
        rules=describe_rules(rule_paths, result.errors),
    )
    return new, summary


def stats(engine: DetectionEngine) -> EngineStats:
    correlations = {
        rule: CorrelationStats(
            groups=state.groups,
            evictions=state.evictions,
            late=state.late,
            suppressed=state.suppressed,
            ungrouped=state.ungrouped,
        )
        for rule, state in engine.correlations_by_rule.items()
    }
    return EngineStats(rules=engine.rule_count, correlations=correlations)


def save_state(engine: DetectionEngine, path: Path) -> int:
    """Write the engine's correlation state to `path`; the number of correlations saved."""
    data = engine.export_state()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return len(data.get("correlations", {}))


def load_state(engine: DetectionEngine, path: Path) -> dict[str, Any]:
    """Restore what `save_state` wrote; an account for the log. A missing file is a fresh
    start; an unreadable one is reported and ignored (the windows start empty)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {"restored": [], "dropped": [], "unknown": [], "error": ""}
    except (OSError, ValueError) as exc:
        return {"restored": [], "dropped": [], "unknown": [], "error": str(exc)}
    if not isinstance(data, dict):
        return {"restored": [], "dropped": [], "unknown": [], "error": "not a JSON object"}
    result = engine.import_state(data)
    return {
        "restored": result.restored,
        "dropped": result.dropped,
        "unknown": result.unknown,
        "error": "",
    }
