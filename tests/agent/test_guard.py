"""Per-source rate limits and the memory ceiling: what is shed is counted, checkpoints pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from agent.guard import GuardedSink, LimitsConfig, MemoryCeiling, TokenBucket, guard_sources
from agent.sources.base import Checkpoint
from agent.status import DropCounter
from canhgac.strictmodel import ValidationError
from canhgac.v1 import events_pb2


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ListSink:
    emitted: list[tuple[list[events_pb2.Event], Checkpoint | None]] = field(default_factory=list)

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        self.emitted.append((list(events), checkpoint))

    def count(self) -> int:
        return sum(len(e) for e, _ in self.emitted)


def events(n: int) -> list[events_pb2.Event]:
    return [events_pb2.Event(id=f"e{i}") for i in range(n)]


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=50, clock=clock)
    assert bucket.take(80) == 50
    assert bucket.take(1) == 0
    clock.now += 2.0
    assert bucket.take(100) == 20
    clock.now += 100.0
    assert bucket.take(100) == 50  # never more than the burst


def sink_with(
    rate: int, burst: int, rss: list[int], clock: Clock
) -> tuple[GuardedSink, ListSink, DropCounter]:
    inner, drops = ListSink(), DropCounter()
    memory = MemoryCeiling(1000, read_rss=lambda: rss[0], clock=clock)
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)

    async def sleep(seconds: float) -> None:  # a waiting source lets the fake time pass
        clock.now += seconds

    sink = GuardedSink("process", inner, bucket, memory, drops, clock=clock, sleep=sleep)
    return sink, inner, drops


async def test_live_events_over_the_rate_are_shed_and_counted() -> None:
    clock = Clock()
    sink, inner, drops = sink_with(100, 100, [0], clock)
    await sink.emit(events(150))
    assert inner.count() == 100
    assert drops.counts == {("process", "rate_limit"): 50}
    clock.now += 1.0
    await sink.emit(events(100))
    assert inner.count() == 200
    assert drops.counts == {("process", "rate_limit"): 50}


async def test_resumable_events_over_the_rate_wait_and_none_is_lost() -> None:
    clock = Clock()
    sink, inner, drops = sink_with(100, 100, [0], clock)
    cp = Checkpoint("authlog:/var/log/auth.log", "pos-1")
    start = clock.now
    await sink.emit(events(350), cp)
    assert inner.count() == 350
    assert inner.emitted[-1][1] == cp
    assert drops.counts == {}
    # 100 from the burst, then 250 at 100/s.
    assert clock.now - start == pytest.approx(2.5)
    assert sink.throttled_seconds["rate_limit"] == pytest.approx(2.5)


async def test_over_the_memory_ceiling_live_events_are_shed_until_memory_falls() -> None:
    clock = Clock()
    rss = [5000]
    sink, inner, drops = sink_with(10_000, 10_000, rss, clock)
    await sink.emit(events(30))
    assert inner.emitted == []
    assert drops.counts == {("process", "memory_ceiling"): 30}
    rss[0] = 10
    await sink.emit(events(5))
    assert inner.count() == 0  # the last reading is trusted for half a second
    clock.now += 1.0
    await sink.emit(events(5))
    assert inner.count() == 5
    assert drops.counts == {("process", "memory_ceiling"): 35}


async def test_over_the_memory_ceiling_resumable_events_wait_for_memory() -> None:
    clock = Clock()
    rss = [5000]
    sink, inner, drops = sink_with(10_000, 10_000, rss, clock)
    readings = 0

    def read() -> int:
        nonlocal readings
        readings += 1
        return 5000 if readings < 4 else 10  # memory falls after the third reading

    sink.memory.read_rss = read
    await sink.emit(events(30), Checkpoint("k", "v"))
    assert inner.count() == 30
    assert drops.counts == {}
    assert sink.throttled_seconds["memory_ceiling"] == pytest.approx(1.5)


async def test_nothing_to_forward_means_no_spool_call() -> None:
    clock = Clock()
    sink, inner, _ = sink_with(1, 1, [0], clock)
    await sink.emit([])
    assert inner.emitted == []


def test_limits_per_source_override_the_default() -> None:
    limits = LimitsConfig.model_validate(
        {"default": {"events_per_second": 10, "burst": 20}, "per_source": {"fim": {"burst": 5}}}
    )
    sinks = guard_sources(["authlog", "fim"], ListSink(), limits, DropCounter())
    assert sinks["authlog"].bucket.rate == 10
    assert sinks["fim"].bucket.burst == 5
    assert sinks["fim"].bucket.rate == 5_000
    assert sinks["fim"].memory is sinks["authlog"].memory


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValidationError, match="max_rss_bytes"):
        LimitsConfig.model_validate({"max_rss_bytes": 1024})
    with pytest.raises(ValidationError, match="events_per_second"):
        LimitsConfig.model_validate({"default": {"events_per_second": 0}})
