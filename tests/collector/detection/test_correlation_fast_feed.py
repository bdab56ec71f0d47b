"""The correlations' per-event shortcuts decide as the plain computation does.

* value_count's sliding window drops stale values by scanning only its oldest ones while events
  come in time order, and re-sorts after one did not: against a plain twin that scans every
  value, on events in any order, with a snapshot and restore midway.
* A group key built once per event and shared (`feed(..., keys)`) by correlations that group
  alike gives the hits each gets building its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detection.correlation import (
    EventCountCorrelation,
    KeyCache,
    TemporalCorrelation,
    Threshold,
    ValueCountCorrelation,
    WindowHit,
)

S = 1_000_000_000
T0 = 1_700_000_000 * S
IPS = ["203.0.113.1", "203.0.113.2"]
USERS = ["root", "admin", "oracle", "pi", "test"]


@dataclass
class _PlainGroup:
    values: dict[str, tuple[int, str]] = field(default_factory=dict)
    newest: int = 0
    quiet_until: int | None = None


class PlainSliding:
    """value_count gte/gt as its module doc states it, every value scanned per event."""

    def __init__(self, span: int, threshold: Threshold) -> None:
        self.span, self.threshold = span, threshold
        self.groups: dict[str, _PlainGroup] = {}
        self.late = self.suppressed = 0

    def feed(self, t: int, ip: str, user: str, event_id: str) -> tuple[Any, ...] | None:
        g = self.groups.setdefault(ip, _PlainGroup())
        if g.quiet_until is not None:
            if t <= g.quiet_until:
                self.suppressed += 1
                return None
            g.quiet_until = None
        if g.values and t < g.newest - self.span:
            self.late += 1
            return None
        g.newest = max(g.newest, t) if g.values else t
        seen = g.values.get(user)
        if seen is None or t >= seen[0]:
            g.values[user] = (t, event_id)
        g.values = {v: e for v, e in g.values.items() if e[0] >= g.newest - self.span}
        if not self.threshold.met(len(g.values)):
            return None
        chosen = sorted(g.values.values(), key=lambda e: e[0])
        hit = (ip, chosen[0][0], chosen[-1][0], len(chosen))
        g.quiet_until = g.newest + self.span
        g.values = {}
        return hit


def _fields(ip: str, user: str, n: int) -> dict[str, Any]:
    return {"source.ip": ip, "user.name": user, "event.id": f"e{n}", "agent.id": "a1"}


def _summary(hit: WindowHit) -> tuple[Any, ...]:
    return (hit.group["source.ip"], hit.first_ns, hit.last_ns, hit.count)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(IPS), st.sampled_from(USERS)), max_size=60
    ),
    span=st.integers(1, 20),
    op=st.sampled_from(["gte", "gt"]),
    value=st.integers(1, 4),
    restore_at=st.integers(0, 60),
)
def test_value_count_in_any_order_matches_a_plain_scan(
    events: list[tuple[int, str, str]], span: int, op: str, value: int, restore_at: int
) -> None:
    threshold = Threshold(op, value)

    def make() -> ValueCountCorrelation:
        return ValueCountCorrelation(
            group_by=("source.ip",),
            timespan_ns=span * S,
            threshold=threshold,
            value_field="user.name",
        )

    fast, plain = make(), PlainSliding(span * S, threshold)
    got, expected = [], []
    for n, (second, ip, user) in enumerate(events):
        if n == restore_at:  # a restart: the state goes through its saved form
            restored = make()
            assert restored.restore(fast.snapshot())
            restored.late, restored.suppressed = fast.late, fast.suppressed
            fast = restored
        t = T0 + second * S
        got += [_summary(h) for h in fast.feed(t, _fields(ip, user, n))]
        hit = plain.feed(t, ip, user, f"e{n}")
        if hit is not None:
            expected.append(hit)
    assert got == expected
    assert (fast.late, fast.suppressed) == (plain.late, plain.suppressed)


def _alike() -> list[Any]:
    span, by_ip = 30 * S, ("source.ip",)
    return [
        EventCountCorrelation(group_by=by_ip, timespan_ns=span, threshold=Threshold("gte", 3)),
        ValueCountCorrelation(
            group_by=by_ip, timespan_ns=span, threshold=Threshold("gte", 2), value_field="user.name"
        ),
        TemporalCorrelation(rules=("fail", "ok"), ordered=True, group_by=by_ip, timespan_ns=span),
        TemporalCorrelation(
            rules=("fail", "ok"),
            ordered=False,
            group_by=("ip",),
            timespan_ns=span,
            aliases={"ip": {"fail": "source.ip", "ok": "destination.ip"}},
        ),
        EventCountCorrelation(group_by=(), timespan_ns=span, threshold=Threshold("gte", 4)),
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.sampled_from([*IPS, None]),
            st.sampled_from(USERS),
            st.sampled_from([("fail",), ("ok",), ("fail", "ok")]),
        ),
        max_size=40,
    )
)
def test_a_shared_group_key_gives_the_hits_of_keys_built_apiece(
    events: list[tuple[int, str | None, str, tuple[str, ...]]],
) -> None:
    shared, apart = _alike(), _alike()
    t = T0
    for n, (step, ip, user, rules) in enumerate(events):
        t += step * S
        f: dict[str, Any] = {"user.name": user, "event.id": f"e{n}", "agent.id": "a1"}
        if ip is not None:
            f["source.ip"] = f["destination.ip"] = ip
        keys: KeyCache = {}
        for a, b in zip(shared, apart, strict=True):
            assert a.feed(t, f, rules, keys) == b.feed(t, f, rules)
    for a, b in zip(shared, apart, strict=True):
        assert a.snapshot() == b.snapshot()
        assert (a.ungrouped, a.late, a.suppressed) == (b.ungrouped, b.late, b.suppressed)
