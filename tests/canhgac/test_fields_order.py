"""fields_reader's `first` kinds and fields_writer: only the order or the target dict changes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.fields import event_fields, fields_reader, fields_writer
from tests.canhgac.test_fields import WANTABLE, _reader_events

KINDS = ["process", "auth", "file", "socket", "flow", "dns", "connection_attempts", "log"]


@settings(max_examples=100, deadline=None)
@given(
    st.sets(st.sampled_from(WANTABLE), max_size=12),
    st.lists(st.sampled_from([*KINDS, "no_such_kind"]), max_size=4),
)
def test_kinds_tested_first_change_nothing(wanted: set[str], first: list[str]) -> None:
    plain, ordered = fields_reader(wanted), fields_reader(wanted, first=first)
    for ev in _reader_events():
        assert ordered(ev) == plain(ev)


@settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(WANTABLE), max_size=12))
def test_a_writer_adds_what_the_reader_returns(wanted: set[str]) -> None:
    read, write = fields_reader(wanted), fields_writer(wanted)
    for ev in _reader_events():
        out: dict[str, Any] = {"already": "here"}
        assert write(ev, out) is out
        assert out == {"already": "here", **read(ev)}
        full = event_fields(ev)
        assert {k: v for k, v in out.items() if k in wanted} == {
            k: v for k, v in full.items() if k in wanted
        }
