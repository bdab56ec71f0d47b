"""EventCountCorrelation: windows, thresholds, reset after firing, bounds and counters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canhgac.errors import RuleError
from collector.detection.correlation import (
    MAX_EVENT_IDS,
    EventCountCorrelation,
    Threshold,
    WindowHit,
)

S = 1_000_000_000
T0 = 1_700_000_000 * S


def counter(op: str = "gte", value: int = 5, span_s: int = 60, **kw: Any) -> EventCountCorrelation:
    return EventCountCorrelation(
        group_by=("source.ip",), timespan_ns=span_s * S, threshold=Threshold(op, value), **kw
    )


def fields(ip: str = "203.0.113.7", n: int = 0, agent: str = "a1", **extra: Any) -> dict[str, Any]:
    return {"source.ip": ip, "event.id": f"e{n}", "agent.id": agent, "host.name": "web1", **extra}


def feed_all(c: EventCountCorrelation, events: list[tuple[int, dict[str, Any]]]) -> list[WindowHit]:
    hits: list[WindowHit] = []
    for t, f in events:
        hits += c.feed(t, f)
    return hits


def test_five_within_the_window_fire_once_with_the_events() -> None:
    c = counter()
    hits = feed_all(c, [(T0 + i * 10 * S, fields(n=i)) for i in range(5)])
    assert hits == [
        WindowHit(
            agent_id="a1",
            host="web1",
            group={"source.ip": "203.0.113.7"},
            first_ns=T0,
            last_ns=T0 + 40 * S,
            event_ids=["e0", "e1", "e2", "e3", "e4"],
            count=5,
        )
    ]


def test_four_do_not_fire() -> None:
    assert feed_all(counter(), [(T0 + i * S, fields(n=i)) for i in range(4)]) == []


def test_window_edge_is_inclusive() -> None:
    # 0, 15, 30, 45, 60 s: the newest is exactly one timespan after the oldest.
    assert len(feed_all(counter(), [(T0 + i * 15 * S, fields(n=i)) for i in range(5)])) == 1
    assert feed_all(counter(), [(T0 + i * 15 * S + i, fields(n=i)) for i in range(5)]) == []


def test_spread_over_two_minutes_does_not_fire() -> None:
    assert feed_all(counter(), [(T0 + i * 30 * S, fields(n=i)) for i in range(5)]) == []


def test_groups_are_counted_apart() -> None:
    events = [(T0 + i * S, fields(ip=f"198.51.100.{i}", n=i)) for i in range(5)]
    assert feed_all(counter(), events) == []


def test_agents_are_counted_apart() -> None:
    events = [(T0 + i * S, fields(agent=f"agent-{i % 2}", n=i)) for i in range(8)]
    assert feed_all(counter(), events) == []


def test_flood_fires_once_per_window() -> None:
    c = counter()
    hits = feed_all(c, [(T0 + i * S // 10, fields(n=i)) for i in range(1200)])  # 10/s, 120 s
    assert [h.first_ns for h in hits] == [T0, T0 + 605 * S // 10]  # quiet until 60.4 s
    assert c.suppressed == 1200 - 10


def test_counting_restarts_after_the_quiet_window() -> None:
    c = counter()
    first = feed_all(c, [(T0 + i * S, fields(n=i)) for i in range(5)])
    during = feed_all(c, [(T0 + 30 * S + i * S, fields(n=10 + i)) for i in range(5)])
    after = feed_all(c, [(T0 + 70 * S + i * S, fields(n=20 + i)) for i in range(5)])
    assert (len(first), len(during), len(after)) == (1, 0, 1)
    assert after[0].event_ids == [f"e{20 + i}" for i in range(5)]


def test_out_of_order_event_inside_the_window_counts() -> None:
    c = counter()
    order = [0, 30, 10, 50, 20]
    hits = feed_all(c, [(T0 + s * S, fields(n=s)) for s in order])
    assert len(hits) == 1
    assert hits[0].event_ids == ["e0", "e10", "e20", "e30", "e50"]


def test_late_event_is_not_counted() -> None:
    c = counter()
    feed_all(c, [(T0 + 100 * S, fields(n=1))])
    assert feed_all(c, [(T0, fields(n=2))]) == []
    assert c.late == 1


def test_event_without_group_field_is_ungrouped() -> None:
    c = counter()
    assert c.feed(T0, {"event.id": "x", "agent.id": "a1"}) == []
    assert c.ungrouped == 1
    assert len(c) == 0


def test_repeated_syslog_line_counts_its_repetitions() -> None:
    c = counter()
    hits = feed_all(
        c, [(T0, fields(n=1)), (T0 + S, {**fields(n=2), "canhgac.auth.repeat_count": 4})]
    )
    assert len(hits) == 1
    assert hits[0].count == 5
    assert hits[0].event_ids == ["e1", "e2"]


def test_group_limit_evicts_the_least_recently_fed() -> None:
    c = counter(max_groups=3)
    for i in range(4):
        c.feed(T0 + i * S, fields(ip=f"10.0.0.{i}", n=i))
    assert len(c) == 3
    assert c.evictions == 1
    # 10.0.0.0 was evicted: four more events from it are a fresh count, not five.
    assert feed_all(c, [(T0 + 5 * S + i, fields(ip="10.0.0.0", n=i)) for i in range(4)]) == []
    assert len(c) == 3
    assert c.evictions == 2


def test_event_ids_are_capped() -> None:
    c = counter(value=MAX_EVENT_IDS + 50)
    hits = feed_all(c, [(T0 + i, fields(n=i)) for i in range(MAX_EVENT_IDS + 50)])
    assert hits[0].count == MAX_EVENT_IDS + 50
    assert len(hits[0].event_ids) == MAX_EVENT_IDS


def test_gt_needs_one_more() -> None:
    assert feed_all(counter("gt", 5), [(T0 + i, fields(n=i)) for i in range(5)]) == []
    assert len(feed_all(counter("gt", 5), [(T0 + i, fields(n=i)) for i in range(6)])) == 1


@pytest.mark.parametrize(
    ("op", "value", "count", "fires"),
    [
        ("lt", 3, 2, True),
        ("lt", 3, 3, False),
        ("lte", 3, 3, True),
        ("lte", 3, 4, False),
        ("eq", 3, 3, True),
        ("eq", 3, 4, False),
        ("neq", 3, 2, True),
        ("neq", 3, 3, False),
    ],
)
def test_non_growing_conditions_are_judged_when_the_window_closes(
    op: str, value: int, count: int, fires: bool
) -> None:
    c = counter(op, value)
    assert feed_all(c, [(T0 + i * S, fields(n=i)) for i in range(count)]) == []
    assert c.advance("a1", T0 + 60 * S) == []  # the window [T0, T0+60 s] is still open
    hits = c.advance("a1", T0 + 61 * S)
    assert len(hits) == (1 if fires else 0)
    if fires:
        assert hits[0].count == count
        assert hits[0].first_ns == T0
    assert len(c) == 0


def test_closing_window_is_reported_by_the_next_matching_event() -> None:
    c = counter("lt", 3)
    c.feed(T0, fields(n=1))
    hits = c.feed(T0 + 90 * S, fields(n=2))  # closes [T0, T0+60 s], opens a new window
    assert [h.event_ids for h in hits] == [["e1"]]
    assert len(c) == 1


def test_another_agents_time_does_not_close_the_window() -> None:
    c = counter("lt", 3)
    c.feed(T0, fields(n=1))
    assert c.advance("other-agent", T0 + 600 * S) == []
    assert len(c.advance("a1", T0 + 600 * S)) == 1


def test_unknown_operator_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="operator 'between'"):
        counter("between")


def test_closing_windows_stay_bounded_under_a_spray_of_keys() -> None:
    c = counter("lt", 3, max_groups=10)
    for i in range(1000):
        c.feed(T0 + i, fields(ip=f"10.0.{i // 250}.{i % 250}", n=i))
    assert len(c) == 10
    assert c.evictions == 990
    assert len(c._deadlines["a1"]) <= 2 * 10
    # The ten groups still held close normally.
    assert len(c.advance("a1", T0 + 61 * S)) == 10


def test_restored_closing_window_still_closes() -> None:
    c = counter("lt", 3)
    c.feed(T0, fields(n=1))
    restored = counter("lt", 3)
    assert restored.restore(json.loads(json.dumps(c.snapshot())))
    assert restored.advance("a1", T0 + 60 * S) == []
    assert [h.event_ids for h in restored.advance("a1", T0 + 61 * S)] == [["e1"]]


def test_restored_quiet_window_still_suppresses() -> None:
    c = counter()
    assert len(feed_all(c, [(T0 + i * S, fields(n=i)) for i in range(5)])) == 1
    restored = counter()
    assert restored.restore(c.snapshot())
    assert feed_all(restored, [(T0 + 10 * S + i * S, fields(n=i)) for i in range(5)]) == []
    assert restored.suppressed == 5


def test_restore_refuses_another_weight_field() -> None:
    c = counter()
    c.feed(T0, fields())
    assert counter(weight_field=None).restore(c.snapshot()) is False
