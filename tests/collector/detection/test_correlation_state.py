"""Durable correlation state: snapshot/restore per kind, and the engine's export/import."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.v1 import events_pb2 as pb
from collector.detection.correlation import (
    AnyCorrelation,
    EventCountCorrelation,
    TemporalCorrelation,
    Threshold,
    ValueCountCorrelation,
    WindowHit,
)
from collector.detection.engine import STATE_VERSION, DetectionEngine

ROOT = Path(__file__).resolve().parents[3]
SSH_RULES = ROOT / "rules" / "linux" / "auth" / "ssh_password_guessing.yml"
GUESSING_ID = "fa6ca2bf-9cda-4489-9e0f-85474f98762d"
OTHER_ID = "1d2c3b4a-0000-4000-8000-0000000000e1"
S = 1_000_000_000
T0 = 1_700_000_000 * S
END = 10**9
G = ("source.ip",)

KINDS: dict[str, Callable[[], AnyCorrelation]] = {
    "event_count_gte": lambda: EventCountCorrelation(
        group_by=G, timespan_ns=20, threshold=Threshold("gte", 3), max_groups=3
    ),
    "event_count_lt": lambda: EventCountCorrelation(
        group_by=G, timespan_ns=20, threshold=Threshold("lt", 3), max_groups=3
    ),
    "value_count_gte": lambda: ValueCountCorrelation(
        group_by=G, timespan_ns=20, threshold=Threshold("gte", 2), value_field="user.name"
    ),
    "value_count_neq": lambda: ValueCountCorrelation(
        group_by=G, timespan_ns=20, threshold=Threshold("neq", 1), value_field="user.name"
    ),
    "temporal": lambda: TemporalCorrelation(
        rules=("A", "B"), ordered=False, group_by=G, timespan_ns=20, max_groups=3
    ),
    "temporal_ordered": lambda: TemporalCorrelation(
        rules=("A", "B", "C"), ordered=True, group_by=G, timespan_ns=20
    ),
}

Event = tuple[int, str, str, frozenset[str]]
event_strategy = st.lists(
    st.tuples(
        st.integers(-3, 10),  # a few events arrive slightly out of time order
        st.sampled_from(["k1", "k2", "k3", "k4"]),
        st.sampled_from(["root", "admin", "bob"]),
        st.frozensets(st.sampled_from(["A", "B", "C"]), min_size=1),
    ),
    max_size=40,
)


def feed(c: AnyCorrelation, events: list[Event], start: int, stop: int) -> list[WindowHit]:
    hits: list[WindowHit] = []
    for i in range(start, stop):
        t, key, user, matched = events[i]
        if isinstance(c, TemporalCorrelation) and matched.isdisjoint(c.rules):
            continue  # the engine feeds only events that matched a referenced rule
        f = {"source.ip": key, "user.name": user, "event.id": str(i), "agent.id": "a"}
        hits += c.feed(t, f, sorted(matched))
    return hits


def _times(raw: list[tuple[int, str, str, frozenset[str]]]) -> list[Event]:
    out, t = [], 100
    for gap, key, user, matched in raw:
        t += gap
        out.append((t, key, user, matched))
    return out


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    raw=event_strategy,
    split=st.integers(0, 40),
)
def test_restart_anywhere_changes_nothing(
    kind: str, raw: list[tuple[int, str, str, frozenset[str]]], split: int
) -> None:
    events = _times(raw)
    split = min(split, len(events))
    whole = KINDS[kind]()
    expected = feed(whole, events, 0, len(events)) + whole.advance("a", END)

    before = KINDS[kind]()
    hits = feed(before, events, 0, split)
    saved = json.loads(json.dumps(before.snapshot()))
    after = KINDS[kind]()
    assert after.restore(saved)
    hits += feed(after, events, split, len(events)) + after.advance("a", END)
    assert hits == expected
    assert after.snapshot() == whole.snapshot()


def test_a_changed_definition_drops_the_state() -> None:
    c = EventCountCorrelation(group_by=G, timespan_ns=60 * S, threshold=Threshold("gte", 5))
    c.feed(T0, {"source.ip": "x", "agent.id": "a"})
    saved = c.snapshot()
    variants: list[AnyCorrelation] = [
        EventCountCorrelation(group_by=G, timespan_ns=61 * S, threshold=Threshold("gte", 5)),
        EventCountCorrelation(group_by=G, timespan_ns=60 * S, threshold=Threshold("gte", 4)),
        EventCountCorrelation(group_by=(), timespan_ns=60 * S, threshold=Threshold("gte", 5)),
        ValueCountCorrelation(
            group_by=G, timespan_ns=60 * S, threshold=Threshold("gte", 5), value_field="user.name"
        ),
    ]
    for other in variants:
        other.feed(T0, {"source.ip": "y", "agent.id": "a", "user.name": "u"})
        assert other.restore(saved) is False
        assert len(other) == 0
    same = EventCountCorrelation(group_by=G, timespan_ns=60 * S, threshold=Threshold("gte", 5))
    assert same.restore(saved) is True
    assert len(same) == 1


@pytest.mark.parametrize(
    "groups",
    [
        [[["a"], {}]],  # key too short
        [[["a", "x"], {"entries": "nope"}]],
        [[["a", "x"], {"entries": [], "total": 0, "start": "soon", "quiet_until": None}]],
        "not a list of groups",
    ],
)
def test_unreadable_state_is_a_value_error_and_leaves_nothing(groups: Any) -> None:
    c = EventCountCorrelation(group_by=G, timespan_ns=60 * S, threshold=Threshold("lt", 5))
    c.feed(T0, {"source.ip": "y", "agent.id": "a"})
    with pytest.raises(ValueError, match="unreadable event_count state"):
        c.restore({"fingerprint": c.fingerprint, "groups": groups})
    assert len(c) == 0
    assert c.advance("a", T0 + 3600 * S) == []


def test_restoring_into_fewer_groups_keeps_the_most_recent() -> None:
    big = EventCountCorrelation(group_by=G, timespan_ns=60 * S, threshold=Threshold("lt", 5))
    for i in range(5):
        big.feed(T0 + i, {"source.ip": f"10.0.0.{i}", "agent.id": "a"})
    small = EventCountCorrelation(
        group_by=G, timespan_ns=60 * S, threshold=Threshold("lt", 5), max_groups=2
    )
    assert small.restore(big.snapshot())
    hits = small.advance("a", T0 + 61 * S)
    assert sorted(h.group["source.ip"] for h in hits) == ["10.0.0.3", "10.0.0.4"]


def test_snapshot_is_plain_json() -> None:
    for make in KINDS.values():
        c = make()
        feed(c, [(100, "k1", "root", frozenset({"A"}))], 0, 1)
        assert json.loads(json.dumps(c.snapshot())) == c.snapshot()


# --- the engine -------------------------------------------------------------------------------

_seq = iter(range(1_000_000))


def failed_login(t: int, ip: str = "203.0.113.7") -> pb.Event:
    return pb.Event(
        id=f"ev{next(_seq)}",
        time_ns=t,
        agent_id="agent-1",
        host="web1",
        category="authentication",
        action="ssh_login",
        outcome=pb.OUTCOME_FAILURE,
        auth=pb.AuthEvent(user="root", source_ip=ip, method="password", process_name="sshd"),
    )


def engine(path: Path) -> DetectionEngine:
    eng, result = DetectionEngine.from_paths([path], clock_ns=lambda: T0)
    assert result.errors == []
    return eng


def restarted(path: Path, state: dict[str, Any]) -> DetectionEngine:
    eng = engine(path)
    report = eng.import_state(json.loads(json.dumps(state)))
    assert report.restored == [GUESSING_ID]
    return eng


def test_restart_keeps_a_window_open() -> None:
    events = [failed_login(T0 + i * 10 * S) for i in range(5)]
    first = engine(SSH_RULES)
    assert first.process(events[:3]) == []
    state = first.export_state()
    assert state["version"] == STATE_VERSION
    assert list(state["correlations"]) == [GUESSING_ID]

    alerts = restarted(SSH_RULES, state).process(events[3:])
    never_stopped = engine(SSH_RULES).process(events)
    assert len(alerts) == 1
    assert list(alerts[0].event_ids) == [ev.id for ev in events]
    assert [(a.first_seen_ns, a.last_seen_ns, a.event_count) for a in alerts] == [
        (a.first_seen_ns, a.last_seen_ns, a.event_count) for a in never_stopped
    ]


def test_restart_with_a_changed_rule_starts_it_empty(tmp_path: Path) -> None:
    first = engine(SSH_RULES)
    first.process([failed_login(T0 + i * S) for i in range(4)])
    state = first.export_state()
    changed = tmp_path / "ssh.yml"
    changed.write_text(SSH_RULES.read_text().replace("timespan: 60s", "timespan: 120s"))
    eng = engine(changed)
    report = eng.import_state(state)
    assert (report.restored, report.dropped) == ([], [GUESSING_ID])
    assert eng.process([failed_login(T0 + 5 * S)]) == []  # the four earlier ones are gone


def test_state_of_rules_no_longer_loaded_or_of_another_version(tmp_path: Path) -> None:
    state = engine(SSH_RULES).export_state()
    other = tmp_path / "other.yml"
    other.write_text(textwrap.dedent(SSH_RULES.read_text()).replace(GUESSING_ID, OTHER_ID))
    eng = engine(other)
    assert eng.import_state(state).unknown == [GUESSING_ID]
    assert eng.import_state({"version": 99, "correlations": {}}).dropped == [OTHER_ID]
    assert eng.import_state({**state, "correlations": {OTHER_ID: "garbage"}}).dropped == [OTHER_ID]
