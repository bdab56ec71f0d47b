"""Property tests: EventCountCorrelation against brute-force reference implementations.

The references recompute every answer from the whole event history, so they share no state
handling (pruning, insertion, heaps) with the implementation under test.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detection.correlation import EventCountCorrelation, Threshold, WindowHit

OPS: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "neq": operator.ne,
}
KEYS = ["203.0.113.1", "203.0.113.2", "198.51.100.3", "192.0.2.4"]
END = 10**9

# (timestamp, key) pairs in arrival order, timestamps non-decreasing as one agent sends them.
gap_and_key = st.tuples(st.integers(0, 40), st.sampled_from(KEYS))
events_strategy = st.lists(gap_and_key, max_size=60).map(lambda gaps: _cumulative(gaps))


def _cumulative(gaps: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out, t = [], 0
    for gap, key in gaps:
        t += gap
        out.append((t, key))
    return out


def run(
    events: list[tuple[int, str]], span: int, op: str, value: int, max_groups: int = 10_000
) -> tuple[EventCountCorrelation, list[tuple[Any, ...]]]:
    c = EventCountCorrelation(
        group_by=("source.ip",),
        timespan_ns=span,
        threshold=Threshold(op, value),
        max_groups=max_groups,
        weight_field=None,
    )
    hits: list[WindowHit] = []
    for i, (t, key) in enumerate(events):
        hits += c.feed(t, {"source.ip": key, "event.id": str(i), "agent.id": "a"})
    hits += c.advance("a", END)
    return c, [(h.group["source.ip"], h.event_ids, h.count, h.first_ns, h.last_ns) for h in hits]


def sliding_reference(
    events: list[tuple[int, str]], span: int, op: str, value: int
) -> list[tuple[Any, ...]]:
    """gte/gt: at each event, count the key's events no older than `span` that came after the
    key's last alert had been quiet for `span`; alert when the condition holds."""
    hits = []
    fired_at: dict[str, int] = {}
    for i, (t, key) in enumerate(events):
        last = fired_at.get(key)
        if last is not None and t <= last + span:
            continue
        window = [
            j
            for j in range(i + 1)
            if events[j][1] == key
            and events[j][0] >= t - span
            and (last is None or events[j][0] > last + span)
        ]
        if OPS[op](len(window), value):
            ids = [str(j) for j in window]
            hits.append((key, ids, len(ids), events[window[0]][0], events[window[-1]][0]))
            fired_at[key] = t
    return hits


def tumbling_reference(
    events: list[tuple[int, str]], span: int, op: str, value: int
) -> list[tuple[Any, ...]]:
    """lt/lte/eq/neq: a window opens at a key's first event and is judged once the agent's
    time passes its end; windows close in order of their end, then key."""
    hits = []
    windows: dict[str, list[int]] = {}

    def close_before(t: int) -> None:
        ends = ((events[ids[0]][0] + span, key) for key, ids in windows.items())
        due = sorted((end, key) for end, key in ends if end < t)
        for _, key in due:
            ids = windows.pop(key)
            if OPS[op](len(ids), value):
                times = [events[j][0] for j in ids]
                hits.append((key, [str(j) for j in ids], len(ids), times[0], times[-1]))

    for i, (t, key) in enumerate(events):
        close_before(t)
        windows.setdefault(key, []).append(i)
    close_before(END)
    return hits


@settings(max_examples=300, deadline=None)
@given(
    events=events_strategy,
    span=st.integers(1, 60),
    op=st.sampled_from(["gte", "gt"]),
    value=st.integers(1, 6),
)
def test_sliding_window_matches_reference(
    events: list[tuple[int, str]], span: int, op: str, value: int
) -> None:
    _, hits = run(events, span, op, value)
    assert hits == sliding_reference(events, span, op, value)


@settings(max_examples=300, deadline=None)
@given(
    events=events_strategy,
    span=st.integers(1, 60),
    op=st.sampled_from(["lte", "lt", "eq", "neq"]),
    value=st.integers(0, 6),
)
def test_closing_window_matches_reference(
    events: list[tuple[int, str]], span: int, op: str, value: int
) -> None:
    _, hits = run(events, span, op, value)
    assert hits == tumbling_reference(events, span, op, value)


@settings(max_examples=200, deadline=None)
@given(
    events=events_strategy,
    span=st.integers(1, 60),
    op=st.sampled_from(["gte", "lt"]),
    max_groups=st.integers(1, 3),
)
def test_group_bound_holds_and_every_eviction_is_counted(
    events: list[tuple[int, str]], span: int, op: str, max_groups: int
) -> None:
    c = EventCountCorrelation(
        group_by=("source.ip",),
        timespan_ns=span,
        threshold=Threshold(op, 3),
        max_groups=max_groups,
        weight_field=None,
    )
    lru: OrderedDict[str, None] = OrderedDict()  # which keys an LRU of this size would hold
    lru_evictions = 0
    for i, (t, key) in enumerate(events):
        c.feed(t, {"source.ip": key, "event.id": str(i), "agent.id": "a"})
        assert len(c) <= max_groups
        if key in lru:
            lru.move_to_end(key)
            continue
        if len(lru) >= max_groups:
            lru.popitem(last=False)
            lru_evictions += 1
        lru[key] = None
    if op == "gte":  # sliding groups live until evicted, so the LRU model is exact
        assert c.evictions == lru_evictions
    else:  # closed windows free their group, so fewer evictions can be needed
        assert c.evictions <= lru_evictions
