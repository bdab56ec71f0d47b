"""Self-protection between the sources and the spool: per-source rate limits and a memory ceiling.

Every source writes into its own `GuardedSink`, which forwards to the spool unless
* the source is over its rate (a token bucket of `events_per_second`, bursts of `burst`), or
* the agent's resident memory is over `max_rss_bytes`.
What happens then depends on whether the events can be had again:
* Events handed over with a checkpoint come from a resumable input (a log file, the journal):
  the input itself is the buffer. The sink waits until the rate allows them or memory is back
  under the ceiling, so the source reads more slowly and nothing is lost. Waits are added up
  per reason in `throttled_seconds` and logged.
* Events without a checkpoint (process starts, file changes, sockets) cannot be had again and
  the source cannot be slowed without falling behind the kernel: they are shed, dropped and
  counted by (source, reason) in the agent's drop counter, which every heartbeat and the next
  agent_status event report.
Logs say so at most once a minute per source and reason. The defaults are far above what a
server's sources produce, so only a flood (or a backlog being read) meets them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agent.sources.base import Checkpoint, EventSink
from agent.status import DropCounter, rss_bytes
from canhgac.strictmodel import Field, StrictModel
from canhgac.v1 import events_pb2

log = logging.getLogger("canhgac.agent.guard")

MiB = 1024 * 1024
# How long a memory reading is trusted: reading /proc/self/statm costs a few microseconds, and
# the sink is called once per chunk of up to 500 events, so this bounds the cost, not the check.
_RSS_TTL_S = 0.5
_LOG_EVERY_S = 60.0


class SourceLimit(StrictModel):
    """A source's rate limit: sustained events per second and the burst above it."""

    events_per_second: int = Field(5_000, ge=1, le=10_000_000)
    burst: int = Field(50_000, ge=1, le=100_000_000)


class LimitsConfig(StrictModel):
    """The agent's self-imposed limits (`limits:` in agent.yaml)."""

    # Above this resident set size every source is shed until memory falls back under it.
    max_rss_bytes: int = Field(128 * MiB, ge=16 * MiB)
    # The limit of every source without an entry in `per_source`.
    default: SourceLimit = SourceLimit()
    # The network sensor of a busy server sees thousands of connections a second, each a flow
    # record: it gets a higher limit than the host sources.
    per_source: dict[str, SourceLimit] = Field(
        default_factory=lambda: {"netsensor": SourceLimit(events_per_second=20_000, burst=200_000)}
    )

    def for_source(self, source_id: str) -> SourceLimit:
        return self.per_source.get(source_id, self.default)


@dataclass
class TokenBucket:
    """`take(n)` returns how many of n events fit the rate now; the rest must be shed."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = -1.0
    _last: float = 0.0

    def take(self, n: int) -> int:
        self._refill()
        allowed = min(n, int(self._tokens))
        self._tokens -= allowed
        return allowed

    def wait_for(self, n: int) -> float:
        """Seconds until n events fit (0 when they fit now); takes nothing."""
        self._refill()
        missing = min(n, self.burst) - self._tokens
        return max(0.0, missing / self.rate)

    def _refill(self) -> None:
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._last = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now


@dataclass
class MemoryCeiling:
    """Whether the agent is over its resident-memory ceiling (read at most every 0.5 s)."""

    max_rss_bytes: int
    read_rss: Callable[[], int] = rss_bytes
    clock: Callable[[], float] = time.monotonic
    _checked: float = float("-inf")
    _over: bool = False

    def over(self) -> bool:
        now = self.clock()
        if now - self._checked >= _RSS_TTL_S:
            self._checked = now
            self._over = self.read_rss() > self.max_rss_bytes
            if self._over:
                # Free what can be freed before the next reading; shedding goes on meanwhile.
                gc.collect()
        return self._over


@dataclass
class GuardedSink:
    """The EventSink one source writes into: rate limit and memory ceiling before the spool."""

    source_id: str
    inner: EventSink
    bucket: TokenBucket
    memory: MemoryCeiling
    drops: DropCounter
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Seconds this source was made to wait (resumable inputs only), by reason.
    throttled_seconds: dict[str, float] = field(default_factory=dict)
    _last_log: dict[str, float] = field(default_factory=dict)

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        if events and checkpoint is not None:
            await self._wait_until_allowed(len(events))
        elif events:
            events = self._shed_what_does_not_fit(events)
        if events or checkpoint is not None:
            await self.inner.emit(events, checkpoint)

    async def _wait_until_allowed(self, n: int) -> None:
        while self.memory.over():
            await self._throttle("memory_ceiling", _RSS_TTL_S)
        remaining = n
        while remaining > 0:
            chunk = min(remaining, max(1, int(self.bucket.burst)))
            delay = self.bucket.wait_for(chunk)
            if delay > 0:
                await self._throttle("rate_limit", delay)
                continue
            remaining -= self.bucket.take(chunk)

    def _shed_what_does_not_fit(
        self, events: Sequence[events_pb2.Event]
    ) -> Sequence[events_pb2.Event]:
        if self.memory.over():
            self._shed("memory_ceiling", len(events))
            return []
        allowed = self.bucket.take(len(events))
        if allowed < len(events):
            self._shed("rate_limit", len(events) - allowed)
        return events[:allowed]

    async def _throttle(self, reason: str, seconds: float) -> None:
        self.throttled_seconds[reason] = self.throttled_seconds.get(reason, 0.0) + seconds
        self._log(reason, "reading more slowly; nothing is lost", seconds=round(seconds, 3))
        await self.sleep(seconds)

    def _shed(self, reason: str, n: int) -> None:
        self.drops.add(self.source_id, reason, n)
        self._log(reason, "shedding events; counted and reported to the collector", events=n)

    def _log(self, reason: str, what: str, **fields: object) -> None:
        now = self.clock()
        if now - self._last_log.get(reason, float("-inf")) >= _LOG_EVERY_S:
            self._last_log[reason] = now
            log.warning(
                "source %s over its limit (%s): %s",
                self.source_id,
                reason,
                what,
                extra={"fields": {"source": self.source_id, "reason": reason, **fields}},
            )


def guard_sources(
    source_ids: Sequence[str], inner: EventSink, limits: LimitsConfig, drops: DropCounter
) -> dict[str, GuardedSink]:
    """One GuardedSink per source, all sharing one memory ceiling and one drop counter."""
    memory = MemoryCeiling(limits.max_rss_bytes)
    sinks = {}
    for sid in source_ids:
        lim = limits.for_source(sid)
        bucket = TokenBucket(rate=lim.events_per_second, burst=lim.burst)
        sinks[sid] = GuardedSink(sid, inner, bucket, memory, drops)
    return sinks
