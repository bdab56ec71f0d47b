"""verify_chain: a valid chain verifies; any single-field change is found at that record."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.audit.model import GENESIS, AuditEntry, AuditRecord, record_hash, verify_chain

_TEXT = st.text(max_size=12)
_DETAIL = st.dictionaries(_TEXT, st.one_of(st.integers(), _TEXT, st.booleans()), max_size=3)
_ENTRY = st.builds(AuditEntry, actor=_TEXT, action=_TEXT, target=_TEXT, detail=_DETAIL)
_FIELDS = ("seq", "at_ns", "actor", "action", "target", "detail", "prev_hash", "hash")


def chain(entries: list[AuditEntry], times: list[int]) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for seq, (entry, at_ns) in enumerate(zip(entries, times, strict=True), start=1):
        digest = record_hash(seq, at_ns, entry, prev)
        fields = (entry.actor, entry.action, entry.target, entry.detail)
        records.append(AuditRecord(seq, at_ns, *fields, prev, digest))
        prev = digest
    return records


def mutated(value: object) -> object:
    """A different value of the same type."""
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    assert isinstance(value, dict)
    return {**value, "tampered": True}


@st.composite
def chains(draw: st.DrawFn) -> list[AuditRecord]:
    entries = draw(st.lists(_ENTRY, min_size=1, max_size=8))
    times = draw(st.lists(st.integers(0, 2**63 - 1), min_size=len(entries), max_size=len(entries)))
    return chain(entries, times)


@given(chains())
def test_a_valid_chain_verifies(records: list[AuditRecord]) -> None:
    check = verify_chain(records)
    assert check.ok
    assert (check.checked, check.last_seq, check.last_hash) == (
        len(records),
        len(records),
        records[-1].hash,
    )


@given(chains(), st.data())
def test_any_single_field_change_is_found_at_that_record(
    records: list[AuditRecord], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(records) - 1))
    name = data.draw(st.sampled_from(_FIELDS))
    record = records[index]
    changes: dict[str, Any] = {name: mutated(getattr(record, name))}
    changed = dataclasses.replace(record, **changes)
    check = verify_chain([*records[:index], changed, *records[index + 1 :]])
    assert not check.ok
    assert check.broken_seq == changed.seq
    assert check.checked == index


def test_a_missing_first_record_is_found() -> None:
    records = chain([AuditEntry("a", "b"), AuditEntry("c", "d")], [1, 2])
    check = verify_chain(records[1:])
    assert not check.ok
    assert "expected record 1" in check.reason
