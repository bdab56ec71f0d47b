"""The engine computes only the fields its rules read: it must raise exactly the alerts it raises
with every field computed, on the library's golden events and on random mixtures of them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.v1 import alert_pb2, events_pb2
from collector.detection.engine import DetectionEngine
from collector.detection.goldens import CASE_START_NS, case_events, golden_path, load_golden

RULES = Path(__file__).resolve().parents[3] / "rules"


def _golden_events() -> list[events_pb2.Event]:
    events: list[events_pb2.Event] = []
    for rule_file in sorted(RULES.rglob("*.yml")):
        golden = golden_path(rule_file)
        if rule_file.name.endswith(".golden.yml") or not golden.exists():
            continue
        for case in load_golden(golden).cases:
            events.extend(case_events(case, str(golden)))
    return events


GOLDEN = _golden_events()


def _engines() -> tuple[DetectionEngine, DetectionEngine]:
    narrow, result = DetectionEngine.from_paths([RULES], clock_ns=lambda: CASE_START_NS)
    full, _ = DetectionEngine.from_paths([RULES], clock_ns=lambda: CASE_START_NS, full_fields=True)
    assert not result.errors
    return narrow, full


def _comparable(alerts: Sequence[alert_pb2.Alert]) -> list[tuple[Any, ...]]:
    # Alert ids are random; everything else must be the same.
    return [
        (
            a.rule_id,
            a.summary,
            tuple(a.event_ids),
            dict(a.group),
            a.event_count,
            a.first_seen_ns,
            a.last_seen_ns,
            a.severity,
            a.category,
        )
        for a in alerts
    ]


def test_golden_events_raise_the_same_alerts_with_narrowed_fields() -> None:
    narrow, full = _engines()
    assert len(GOLDEN) > 200
    expected = _comparable(full.process(GOLDEN))
    assert len(expected) > 50  # the library does alert on its golden events
    assert _comparable(narrow.process(GOLDEN)) == expected


def _mix(seed: int, size: int) -> list[events_pb2.Event]:
    """Golden events with payload strings swapped among them: values the rules look for, in
    combinations and event kinds the golden cases do not have."""
    rng = random.Random(seed)
    pool = [
        value
        for ev in GOLDEN
        for _, value in getattr(ev, ev.WhichOneof("payload") or "id", ev).ListFields()
        if isinstance(value, str)
    ]
    out = []
    for i in range(size):
        ev = events_pb2.Event()
        ev.CopyFrom(rng.choice(GOLDEN))
        kind = ev.WhichOneof("payload")
        if kind is not None:
            payload = getattr(ev, kind)
            for descriptor, value in payload.ListFields():
                if isinstance(value, str) and rng.random() < 0.25:
                    setattr(payload, descriptor.name, rng.choice(pool))
        if rng.random() < 0.3:
            ev.action = rng.choice(GOLDEN).action
        ev.time_ns = CASE_START_NS + i * 1_000_000_000
        out.append(ev)
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32))
def test_random_mixtures_raise_the_same_alerts_with_narrowed_fields(seed: int) -> None:
    narrow, full = _engines()
    events = _mix(seed, 400)
    assert _comparable(narrow.process(events)) == _comparable(full.process(events))
