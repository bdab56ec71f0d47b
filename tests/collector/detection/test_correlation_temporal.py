"""TemporalCorrelation, unordered and ordered: windows, order, bounds, and a brute-force twin."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.errors import RuleError
from collector.detection.correlation import TemporalCorrelation, Threshold, WindowHit

S = 1_000_000_000
T0 = 1_700_000_000 * S


def temporal(
    rules: tuple[str, ...] = ("guess", "login"),
    *,
    ordered: bool = True,
    span: int = 300 * S,
    **kw: Any,
) -> TemporalCorrelation:
    return TemporalCorrelation(
        rules=rules, ordered=ordered, group_by=("source.ip",), timespan_ns=span, **kw
    )


def fields(n: int = 0, ip: str = "203.0.113.7", agent: str = "a1") -> dict[str, Any]:
    return {"source.ip": ip, "event.id": f"e{n}", "agent.id": agent, "host.name": "web1"}


def feed_all(
    c: TemporalCorrelation, events: Sequence[tuple[int, str | tuple[str, ...], dict[str, Any]]]
) -> list[WindowHit]:
    hits: list[WindowHit] = []
    for t, rules, f in events:
        hits += c.feed(t, f, (rules,) if isinstance(rules, str) else rules)
    return hits


def test_guessing_then_login_fires_with_both_events() -> None:
    hits = feed_all(temporal(), [(T0, "guess", fields(1)), (T0 + 60 * S, "login", fields(2))])
    assert hits == [
        WindowHit(
            agent_id="a1",
            host="web1",
            group={"source.ip": "203.0.113.7"},
            first_ns=T0,
            last_ns=T0 + 60 * S,
            event_ids=["e1", "e2"],
            count=2,
        )
    ]


def test_login_before_guessing_does_not_fire_when_ordered() -> None:
    events = [(T0, "login", fields(1)), (T0 + S, "guess", fields(2))]
    assert feed_all(temporal(), events) == []
    assert len(feed_all(temporal(ordered=False), events)) == 1


def test_steps_too_far_apart_do_not_fire() -> None:
    events = [(T0, "guess", fields(1)), (T0 + 301 * S, "login", fields(2))]
    assert feed_all(temporal(), events) == []
    assert feed_all(temporal(ordered=False), events) == []


def test_latest_start_is_kept_so_a_chain_can_still_complete() -> None:
    events = [(T0, "guess", fields(1)), (T0 + 200 * S, "guess", fields(2))]
    hits = feed_all(temporal(), [*events, (T0 + 400 * S, "login", fields(3))])
    assert [(h.first_ns, h.event_ids) for h in hits] == [(T0 + 200 * S, ["e2", "e3"])]


def test_one_event_matching_both_rules() -> None:
    # Unordered: it counts for both rules. Ordered: it fills one step of a chain, not two.
    assert len(feed_all(temporal(ordered=False), [(T0, ("guess", "login"), fields())])) == 1
    c = temporal()
    assert feed_all(c, [(T0, ("guess", "login"), fields(1))]) == []
    assert [h.event_ids for h in feed_all(c, [(T0, "login", fields(2))])] == [["e1", "e2"]]


def test_three_steps_in_order() -> None:
    c = temporal(("scan", "guess", "login"))
    events = [
        (T0, "guess", fields(0)),
        (T0 + S, "scan", fields(1)),
        (T0 + 2 * S, "login", fields(2)),
    ]
    assert feed_all(c, events) == []
    hits = feed_all(c, [(T0 + 3 * S, "guess", fields(3)), (T0 + 4 * S, "login", fields(4))])
    assert [h.event_ids for h in hits] == [["e1", "e3", "e4"]]


def test_out_of_order_step_does_not_complete_a_later_start() -> None:
    c = temporal()
    c.feed(T0 + 10 * S, fields(1), ("guess",))
    assert c.feed(T0 + 5 * S, fields(2), ("login",)) == []  # before the guess in event time


def test_one_alert_per_window_then_quiet() -> None:
    c = temporal(span=60 * S)
    first = feed_all(c, [(T0, "guess", fields(1)), (T0 + S, "login", fields(2))])
    during = feed_all(c, [(T0 + 10 * S, "guess", fields(3)), (T0 + 20 * S, "login", fields(4))])
    after = feed_all(c, [(T0 + 70 * S, "guess", fields(5)), (T0 + 71 * S, "login", fields(6))])
    assert (len(first), len(during), len(after)) == (1, 0, 1)
    assert c.suppressed == 2


def test_late_ungrouped_and_evicted_are_counted() -> None:
    c = temporal(max_groups=2, span=60 * S)
    c.feed(T0 + 100 * S, fields(1), ("guess",))
    assert c.feed(T0, fields(2), ("login",)) == []
    c.feed(T0, {"agent.id": "a1"}, ("guess",))
    for i in range(3):
        c.feed(T0 + 100 * S, fields(ip=f"10.0.0.{i}"), ("guess",))
    assert (c.late, c.ungrouped, c.evictions, len(c)) == (1, 1, 2, 2)


def test_groups_and_agents_are_apart() -> None:
    events = [(T0, "guess", fields(1)), (T0 + S, "login", fields(2, ip="198.51.100.1"))]
    events.append((T0 + S, "login", fields(3, agent="a2")))
    assert feed_all(temporal(), events) == []


def test_unordered_partial_threshold() -> None:
    c = temporal(("a", "b", "c"), ordered=False, threshold=Threshold("gte", 2))
    assert feed_all(c, [(T0, "a", fields(1)), (T0, "a", fields(2))]) == []
    assert [h.count for h in feed_all(c, [(T0 + S, "c", fields(3))])] == [2]


def test_per_group_memory_is_one_entry_per_rule() -> None:
    c = temporal(("a", "b", "c"), ordered=False)
    for i in range(1000):
        c.feed(T0 + i, fields(i), ("a",) if i % 2 else ("b",))
    (group,) = c._groups.values()
    assert len(group.latest) == 2


def test_aliases_pick_the_group_field_per_rule() -> None:
    c = TemporalCorrelation(
        rules=("conn", "login"),
        ordered=True,
        group_by=("ip",),
        timespan_ns=60 * S,
        aliases={"ip": {"conn": "destination.ip", "login": "source.ip"}},
    )
    c.feed(T0, {"agent.id": "a", "destination.ip": "10.0.0.1"}, ("conn",))
    (hit,) = c.feed(T0 + S, {"agent.id": "a", "source.ip": "10.0.0.1"}, ("login",))
    assert hit.group == {"ip": "10.0.0.1"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"threshold": Threshold("lt", 2)}, "must be gte or gt"),
        ({"threshold": Threshold("gte", 1)}, "no condition other than all rules"),
        ({"rules": ("a", "a"), "ordered": False}, "lists a rule twice"),
        ({"ordered": False, "threshold": Threshold("gte", 3)}, "can never hold"),
    ],
)
def test_impossible_or_unsupported_definitions_are_rule_errors(
    kw: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"rules": ("a", "b"), "ordered": True, **kw}
    with pytest.raises(RuleError, match=message):
        TemporalCorrelation(group_by=(), timespan_ns=S, **args)


def test_feeding_without_rule_keys_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="which referenced rules"):
        temporal().feed(T0, fields())


# --- property test: temporal_ordered against a brute-force twin ------------------------------

NAMES = ["A", "B", "C"]
KEYS = ["k1", "k2"]
END = 10**9
Event = tuple[int, str, frozenset[str]]

matched_strategy = st.frozensets(st.sampled_from(NAMES), min_size=1)
event_strategy = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(KEYS), matched_strategy), max_size=40
).map(lambda raw: _cumulative(raw))


def _cumulative(raw: list[Event]) -> list[Event]:
    out, t = [], 0
    for gap, key, matched in raw:
        t += gap
        out.append((t, key, matched))
    return out


def ordered_reference(
    events: list[Event], rules: tuple[str, ...], span: int
) -> list[tuple[Any, ...]]:
    """At each event, every chain of distinct events in arrival order that match the rules
    step by step, ends at this event and spans at most `span`, among the key's events after
    its last alert's quiet timespan; alert with the latest start any such chain has."""
    hits = []
    quiet: dict[str, int] = {}

    def starts(last: int, step: int, pool: list[int]) -> Iterator[int]:
        if rules[step] not in events[last][2]:
            return
        if step == 0:
            yield events[last][0]
            return
        for j in pool:
            if j < last:
                yield from starts(j, step - 1, pool)

    for i, (t, key, _) in enumerate(events):
        q = quiet.get(key)
        if q is not None and t <= q:
            continue
        pool = [j for j in range(i) if events[j][1] == key and (q is None or events[j][0] > q)]
        valid = [s for s in starts(i, len(rules) - 1, pool) if t - s <= span]
        if valid:
            hits.append((key, max(valid), t, len(rules), str(i)))
            quiet[key] = t + span
    return hits


@settings(max_examples=300, deadline=None)
@given(
    events=event_strategy,
    rules=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple),
    span=st.integers(1, 40),
)
def test_ordered_matches_reference(events: list[Event], rules: tuple[str, ...], span: int) -> None:
    c = TemporalCorrelation(rules=rules, ordered=True, group_by=("source.ip",), timespan_ns=span)
    hits: list[WindowHit] = []
    for i, (t, key, matched) in enumerate(events):
        if matched.isdisjoint(rules):
            continue  # the engine only feeds events that matched a referenced rule
        f = {"source.ip": key, "event.id": str(i), "agent.id": "a"}
        hits += c.feed(t, f, sorted(matched))
    got = [(h.group["source.ip"], h.first_ns, h.last_ns, h.count, h.event_ids[-1]) for h in hits]
    assert all(len(h.event_ids) == len(rules) for h in hits)
    assert got == ordered_reference(events, rules, span)
