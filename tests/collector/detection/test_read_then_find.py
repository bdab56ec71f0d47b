"""The engine's reader hands each event's fields to the index's find for its payload kind.

* `fields_reader_then` reads what `fields_reader` reads, and the test of paths it gives `then`
  for an event's branch accepts every path the reader can give that event (a path it refused
  would be a field the index never probes: a rule that silently never matches).
* `RuleIndex.find_among(may_hold)` on fields holding only paths `may_hold` accepts returns
  what `candidates` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.fields import FIELD_PATHS, event_fields, fields_reader, fields_reader_then
from canhgac.v1 import events_pb2 as pb
from collector.detection.index import Anchor, Anchors, RuleIndex
from tests.collector.detection.test_fast_paths import NAMES, anchor_sets

MayHold = Callable[[str], bool]
WANTABLE = sorted(FIELD_PATHS | {"labels.k", "canhgac.log.fields.k"})


def _fill(message: Any, depth: int = 0) -> None:
    """Set every field of `message` (and of its messages, two levels down) to a value."""
    for f in message.DESCRIPTOR.fields:
        repeated = getattr(f, "is_repeated", None)
        if repeated is None:  # older protobuf runtimes
            repeated = f.label == f.LABEL_REPEATED
        if f.message_type is not None:
            if f.message_type.GetOptions().map_entry:
                value_type = f.message_type.fields_by_name["value"].type
                getattr(message, f.name)["k"] = "1" if value_type == f.TYPE_STRING else 1
            elif depth < 2:
                _fill(getattr(message, f.name).add() if repeated else getattr(message, f.name))
            continue
        value: Any
        if f.type == f.TYPE_STRING:
            value = "source" if f.name == "scope" else "1.1.1.1"  # valid as an address too
        elif f.type == f.TYPE_BOOL:
            value = True
        elif f.type == f.TYPE_ENUM:
            value = f.enum_type.values[-1].number
        elif f.type in (f.TYPE_DOUBLE, f.TYPE_FLOAT):
            value = 1.5
        elif f.type == f.TYPE_BYTES:
            value = b"x"
        else:
            value = 2
        if repeated:
            getattr(message, f.name).append(value)
        else:
            setattr(message, f.name, value)


def _reader_events() -> list[pb.Event]:
    """One event of each payload kind with every field set, and one without a payload."""
    events = []
    for kind in pb.Event.DESCRIPTOR.oneofs_by_name["payload"].fields:
        ev = pb.Event(
            id="e", agent_id="a", host="h", category="c", action="x", outcome=pb.OUTCOME_SUCCESS
        )
        ev.labels["k"] = "v"
        _fill(getattr(ev, kind.name))
        events.append(ev)
    events.append(pb.Event(id="e", agent_id="a", category="c", type="t"))
    return events


values = st.one_of(st.text("abAB/1", max_size=5), st.integers(0, 12), st.booleans())


@st.composite
def field_dicts(draw: st.DrawFn) -> dict[str, Any]:
    return {name: draw(values) for name in NAMES if draw(st.booleans())}


def _test_itself(may_hold: MayHold) -> Callable[[dict[str, Any]], MayHold]:
    return lambda fields: may_hold


def test_the_fields_are_those_of_the_plain_reader() -> None:
    for wanted in (WANTABLE, ["process.name", "event.outcome"], ["labels.k"], []):
        read, plain = fields_reader_then(wanted, _test_itself), fields_reader(wanted)
        for ev in _reader_events():
            assert read(ev)[0] == plain(ev), ev


def test_every_kind_is_read() -> None:
    kinds = {ev.WhichOneof("payload") for ev in _reader_events()}
    assert {"process", "auth", "dns", "log", None} <= kinds


def test_an_event_can_hold_no_path_its_branch_rules_out() -> None:
    # Each branch of the reader (and the one for events of a kind nothing is wanted from) is
    # given its own test; it must accept every path the reader gives, and every wanted one the
    # event has.
    for wanted in (WANTABLE, ["process.executable"], ["event.action", "labels.k"]):
        read = fields_reader_then(wanted, _test_itself)
        for ev in _reader_events():
            fields, may_hold = read(ev)
            held = set(fields) | (set(event_fields(ev)) & set(wanted))
            refused = [path for path in held if not may_hold(path)]
            assert not refused, (ev, refused)


def test_an_event_of_one_kind_cannot_hold_another_kinds_paths() -> None:
    # What makes it worth having: a process event's find skips DNS and log fields.
    read = fields_reader_then(WANTABLE, _test_itself)
    process = next(ev for ev in _reader_events() if ev.WhichOneof("payload") == "process")
    _, may_hold = read(process)
    assert may_hold("process.command_line")
    assert may_hold("event.action")
    assert may_hold("labels.anything")  # labels come with any payload
    assert not may_hold("dns.question.name")
    assert not may_hold("destination.port")
    assert not may_hold("canhgac.log.fields.k")  # a log record's own fields: with a log only
    log = next(ev for ev in _reader_events() if ev.WhichOneof("payload") == "log")
    assert read(log)[1]("canhgac.log.fields.k")


def _among(
    index: RuleIndex[tuple[int, Anchors | None]], names: Sequence[str]
) -> Callable[[dict[str, Any]], Sequence[Any]]:
    return index.find_among(lambda path: path in names)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(anchor_sets(), min_size=1, max_size=8),
    st.lists(field_dicts(), min_size=1, max_size=8),
    st.sets(st.sampled_from(["process.command_line", "process.executable", "destination.port"])),
)
def test_find_among_some_fields_is_candidates_on_fields_of_those_only(
    anchor_lists: list[Anchors | None], events: list[dict[str, Any]], names: set[str]
) -> None:
    rules = list(enumerate(anchor_lists))
    index = RuleIndex(rules, lambda rule: rule[1])
    find = _among(index, sorted(names))
    for fields in events:
        # event.type is a weak field, never probed: it may stay whatever `names` says.
        held = {k: v for k, v in fields.items() if k in names or k == "event.type"}
        assert list(find(held)) == list(index.candidates(held)), held


def test_find_among_no_field_returns_the_rules_without_anchors() -> None:
    anchored: Anchors = frozenset({Anchor("process.executable", "/tmp/x", True)})
    rules: list[tuple[int, Anchors | None]] = [(0, anchored), (1, None), (2, anchored)]
    index = RuleIndex(rules, lambda rule: rule[1])
    find = index.find_among(lambda path: False)
    assert list(find({"process.executable": "/tmp/x"})) == [(1, None)]
    assert list(index.find({"process.executable": "/tmp/x"})) == rules
    # The same set of fields gives the same function (one compiled find per set).
    assert index.find_among(lambda path: path == "destination.port") is find
