"""The per-agent token bucket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_wait_proportional_to_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=200, clock=clock)
    assert bucket.take(200) == 0.0
    assert bucket.take(50) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take(0) == 0.0
    clock.now += 10
    assert bucket.take(200) == 0.0  # refilled, but never above the burst
    assert bucket.take(1) == pytest.approx(0.01)


def test_zero_rate_is_unlimited() -> None:
    assert TokenBucket(rate=0, burst=0).take(10**9) == 0.0


@given(st.lists(st.tuples(st.integers(0, 1000), st.floats(0, 5)), max_size=50))
def test_long_run_rate_is_bounded(steps: list[tuple[int, float]]) -> None:
    """Whoever waits as told never gets more than burst + rate * elapsed through."""
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=200, clock=clock)
    taken = 0
    for n, gap in steps:
        clock.now += gap
        # Everything taken before this batch fits the budget of the time elapsed so far (a
        # batch itself is never split, so it may overdraw; the wait pays that back).
        assert taken <= 200 + 100 * clock.now + 1e-6
        wait = bucket.take(n)
        taken += n
        clock.now += wait
