"""Debouncing: a burst on one path is one check; renames come out as a pair."""

from __future__ import annotations

from agent.sources.fim.settle import MAX_SETTLE_FACTOR, SettleQueue


def test_burst_settles_once() -> None:
    queue = SettleQueue(0.2)
    for t in (0.0, 0.1, 0.2, 0.3):
        queue.touch("/f", t, 7)
    assert queue.take_ready(0.4) == ({}, {})
    ready, _ = queue.take_ready(0.5)
    assert list(ready) == ["/f"]
    assert ready["/f"].time_ns == 7
    assert not queue
    assert queue.next_deadline() is None


def test_continuous_writes_are_checked_after_max_wait() -> None:
    queue = SettleQueue(0.2)
    t = 0.0
    while t < 0.2 * MAX_SETTLE_FACTOR:
        queue.touch("/log", t, 0)
        t += 0.05
    assert queue.next_deadline() == 0.2 * MAX_SETTLE_FACTOR
    assert list(queue.take_ready(t)[0]) == ["/log"]


def test_rename_partner_comes_out_with_its_pair() -> None:
    queue = SettleQueue(0.2)
    queue.touch("/d/tmp", 0.0, 0)
    queue.touch("/d/final", 0.5, 0)
    queue.rename("/d/tmp", "/d/final")
    ready, renames = queue.take_ready(0.3)  # only /d/tmp has settled
    assert sorted(ready) == ["/d/final", "/d/tmp"]
    assert renames == {"/d/final": "/d/tmp"}
