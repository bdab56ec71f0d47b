"""ValueCountCorrelation: distinct values per group, bounds, counters, and a brute-force twin."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detection.correlation import Threshold, ValueCountCorrelation, WindowHit

S = 1_000_000_000
T0 = 1_700_000_000 * S


def counter(
    op: str = "gte", value: int = 3, span: int = 60 * S, **kw: Any
) -> ValueCountCorrelation:
    return ValueCountCorrelation(
        group_by=("source.ip",),
        timespan_ns=span,
        threshold=Threshold(op, value),
        value_field="user.name",
        **kw,
    )


def fields(user: str | None, n: int = 0, ip: str = "203.0.113.7", **extra: Any) -> dict[str, Any]:
    out = {"source.ip": ip, "event.id": f"e{n}", "agent.id": "a1", "host.name": "web1", **extra}
    if user is not None:
        out["user.name"] = user
    return out


def feed_all(c: ValueCountCorrelation, events: list[tuple[int, dict[str, Any]]]) -> list[WindowHit]:
    hits: list[WindowHit] = []
    for t, f in events:
        hits += c.feed(t, f)
    return hits


def test_three_distinct_users_fire_once() -> None:
    c = counter()
    users = ["root", "root", "admin", "root", "oracle"]
    hits = feed_all(c, [(T0 + i * S, fields(u, i)) for i, u in enumerate(users)])
    assert hits == [
        WindowHit(
            agent_id="a1",
            host="web1",
            group={"source.ip": "203.0.113.7"},
            first_ns=T0 + 2 * S,
            last_ns=T0 + 4 * S,
            event_ids=["e2", "e3", "e4"],  # each value's latest event, oldest first
            count=3,
        )
    ]


def test_repeating_one_value_never_fires() -> None:
    assert feed_all(counter(), [(T0 + i, fields("root", i)) for i in range(50)]) == []


def test_values_leave_the_sliding_window() -> None:
    c = counter(span=10 * S)
    events = [(T0, fields("a", 1)), (T0 + 5 * S, fields("b", 2)), (T0 + 11 * S, fields("c", 3))]
    assert feed_all(c, events) == []  # "a" is 11 s old when "c" arrives
    assert len(feed_all(c, [(T0 + 12 * S, fields("a", 4))])) == 1


def test_quiet_window_suppresses_then_counting_restarts() -> None:
    c = counter(value=2, span=10 * S)
    assert len(feed_all(c, [(T0, fields("a")), (T0 + S, fields("b"))])) == 1
    assert feed_all(c, [(T0 + 5 * S, fields("c")), (T0 + 11 * S, fields("d"))]) == []
    assert c.suppressed == 2
    assert len(feed_all(c, [(T0 + 12 * S, fields("e")), (T0 + 13 * S, fields("f"))])) == 1


def test_late_event_is_not_counted() -> None:
    c = counter(value=2)
    c.feed(T0 + 100 * S, fields("a"))
    assert c.feed(T0, fields("b")) == []
    assert c.late == 1


def test_ungrouped_and_valueless_events_are_counted_apart() -> None:
    c = counter()
    c.feed(T0, {"user.name": "x", "agent.id": "a1"})
    c.feed(T0, fields(None))
    assert (c.ungrouped, c.valueless, len(c)) == (1, 1, 0)


def test_group_limit_evicts_least_recently_fed() -> None:
    c = counter(max_groups=2)
    for i in range(3):
        c.feed(T0 + i, fields("a", ip=f"10.0.0.{i}"))
    assert (len(c), c.evictions) == (2, 1)


def test_list_value_counts_as_one_value() -> None:
    c = ValueCountCorrelation(
        group_by=(), timespan_ns=S, threshold=Threshold("gte", 2), value_field="user.roles"
    )
    both, one = {"agent.id": "a", "user.roles": ["x", "y"]}, {"agent.id": "a", "user.roles": ["x"]}
    assert [h.count for h in feed_all(c, [(T0, both), (T0, both), (T0, one)])] == [2]


@pytest.mark.parametrize(
    ("op", "value", "users", "fires", "count"),
    [
        ("lt", 3, ["a", "b", "a"], True, 2),
        ("lt", 3, ["a", "b", "c"], False, 0),
        ("eq", 2, ["a", "b", "b"], True, 2),
        ("eq", 2, ["a", "b", "c"], False, 0),
        ("neq", 2, ["a", "b", "c", "d", "e"], True, 3),  # saturates at floor(2) + 1
        ("lte", 1, ["a", "a"], True, 1),
    ],
)
def test_closing_window_is_judged_at_its_end(
    op: str, value: int, users: list[str], fires: bool, count: int
) -> None:
    c = counter(op, value)
    assert feed_all(c, [(T0 + i * S, fields(u, i)) for i, u in enumerate(users)]) == []
    assert c.advance("a1", T0 + 60 * S) == []
    hits = c.advance("a1", T0 + 61 * S)
    assert [h.count for h in hits] == ([count] if fires else [])
    assert len(c) == 0


def test_closing_window_keeps_at_most_threshold_plus_one_values() -> None:
    c = counter("lt", 5)
    feed_all(c, [(T0 + i, fields(f"user{i}", i)) for i in range(1000)])
    (group,) = c._groups.values()
    assert len(group.values) == 6


def test_sliding_window_never_holds_more_than_the_threshold() -> None:
    c = counter("gte", 4, span=1000)
    for i in range(500):
        c.feed(T0 + i * 300, fields(f"u{i % 7}", i))
        assert all(len(g.values) < 4 for g in c._groups.values())


# --- property tests against a brute-force twin -----------------------------------------------

OPS: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "neq": operator.ne,
}
KEYS = ["203.0.113.1", "198.51.100.2", "192.0.2.3"]
USERS = ["root", "admin", "oracle", "bob", None]
END = 10**9
Event = tuple[int, str, str | None]

event_strategy = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(KEYS), st.sampled_from(USERS)), max_size=50
).map(lambda raw: _cumulative(raw))


def _cumulative(raw: list[tuple[int, str, str | None]]) -> list[Event]:
    out, t = [], 0
    for gap, key, user in raw:
        t += gap
        out.append((t, key, user))
    return out


def run(events: list[Event], span: int, op: str, value: int) -> list[tuple[Any, ...]]:
    c = ValueCountCorrelation(
        group_by=("source.ip",),
        timespan_ns=span,
        threshold=Threshold(op, value),
        value_field="user.name",
    )
    hits: list[WindowHit] = []
    for i, (t, key, user) in enumerate(events):
        f: dict[str, Any] = {"source.ip": key, "event.id": str(i), "agent.id": "a"}
        if user is not None:
            f["user.name"] = user
        hits += c.feed(t, f)
    hits += c.advance("a", END)
    return [(h.group["source.ip"], h.event_ids, h.count, h.first_ns, h.last_ns) for h in hits]


def sliding_reference(events: list[Event], span: int, op: str, value: int) -> list[tuple[Any, ...]]:
    """gte/gt: at each event, the distinct values of the key's events no older than `span`
    that came after its last alert's quiet timespan; each value shown by its latest event."""
    hits = []
    quiet: dict[str, int] = {}
    for i, (t, key, user) in enumerate(events):
        if user is None:
            continue
        q = quiet.get(key)
        if q is not None and t <= q:
            continue
        latest: dict[str, int] = {}
        for j in range(i + 1):
            tj, kj, uj = events[j]
            if kj == key and uj is not None and tj >= t - span and (q is None or tj > q):
                latest[uj] = j
        if OPS[op](len(latest), value):
            chosen = sorted(latest.values())
            ids = [str(j) for j in chosen]
            hits.append((key, ids, len(ids), events[chosen[0]][0], events[chosen[-1]][0]))
            quiet[key] = t + span
    return hits


def tumbling_reference(
    events: list[Event], span: int, op: str, value: int
) -> list[tuple[Any, ...]]:
    """lt/lte/eq/neq: a window opens at a key's first valued event and is judged once the
    agent's time passes its end; values counted up to floor(value) + 1, first events shown."""
    hits = []
    windows: dict[str, list[int]] = {}
    cap = math.floor(value) + 1

    def close_before(t: int) -> None:
        due = sorted((events[js[0]][0] + span, key) for key, js in windows.items())
        for end, key in due:
            if end >= t:
                continue
            first: dict[str | None, int] = {}
            for j in windows.pop(key):
                if len(first) < cap:
                    first.setdefault(events[j][2], j)
            if OPS[op](len(first), value):
                chosen = sorted(first.values())
                times = [events[j][0] for j in chosen]
                hits.append((key, [str(j) for j in chosen], len(chosen), times[0], times[-1]))

    for i, (t, key, user) in enumerate(events):
        close_before(t)
        if user is not None:
            windows.setdefault(key, []).append(i)
    close_before(END)
    return hits


@settings(max_examples=250, deadline=None)
@given(
    events=event_strategy,
    span=st.integers(1, 60),
    op=st.sampled_from(["gte", "gt"]),
    value=st.integers(1, 4),
)
def test_sliding_window_matches_reference(
    events: list[Event], span: int, op: str, value: int
) -> None:
    assert run(events, span, op, value) == sliding_reference(events, span, op, value)


@settings(max_examples=250, deadline=None)
@given(
    events=event_strategy,
    span=st.integers(1, 60),
    op=st.sampled_from(["lte", "lt", "eq", "neq"]),
    value=st.integers(0, 4),
)
def test_closing_window_matches_reference(
    events: list[Event], span: int, op: str, value: int
) -> None:
    assert run(events, span, op, value) == tumbling_reference(events, span, op, value)
