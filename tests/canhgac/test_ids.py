"""Event ids: the table-driven encoding against the plain ULID layout it replaced."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canhgac import ids

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reference_id(now_ns: int, rand: bytes) -> str:
    """Crockford base32 of the low 50 bits of the ms count, then of the 80 random bits."""

    def b32(value: int, length: int) -> str:
        return "".join(ALPHABET[value >> (5 * i) & 31] for i in reversed(range(length)))

    return b32(now_ns // 1_000_000, 10) + b32(int.from_bytes(rand, "big"), 16)


TIMES = st.one_of(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(),
    # Several ids in one millisecond, as a busy source makes them.
    st.integers(min_value=1_795_350_467_000_000_000, max_value=1_795_350_467_003_000_000),
)


@given(st.lists(st.tuples(TIMES, st.binary(min_size=10, max_size=10)), min_size=1, max_size=20))
def test_new_id_matches_the_reference_layout(calls: list[tuple[int, bytes]]) -> None:
    for now_ns, rand in calls:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "urandom", lambda n, rand=rand: rand[:n])
            assert ids.new_id(now_ns) == reference_id(now_ns, rand)


def test_ids_sort_by_time_and_differ() -> None:
    earlier, later = ids.new_id(1_795_350_467_000_000_000), ids.new_id(1_795_350_467_001_000_000)
    assert len(earlier) == len(later) == 26
    assert earlier < later
    assert ids.new_id(5) != ids.new_id(5)
