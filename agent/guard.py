"""Self-protection between the sources and the spool: per-source rate limits and a memory ceiling.

Every source writes into its own `GuardedSink`, which forwards to the spool unless
* the source is over its rate (a token bucket of `events_per_second`, bursts of `burst`), or
* the agent's resident memory is over `max_rss_bytes`.
Then the events are shed: dropped, counted by (source, reason) in the agent's drop counter
(reported in every heartbeat and in the next agent_status event) and logged at most once a
minute per source and reason. The checkpoint still goes through, so a file source moves past
what was shed instead of reading it again and again. Shedding is the agent's last resort: the
defaults are far above what a server's sources produce, so only a flood meets them.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import Field

from agent.sources.base import Checkpoint, EventSink
from agent.status import DropCounter, rss_bytes
from canhgac.config import StrictModel
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
    per_source: dict[str, SourceLimit] = Field(default_factory=dict)

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
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._last = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        allowed = min(n, int(self._tokens))
        self._tokens -= allowed
        return allowed


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
    _last_log: dict[str, float] = field(default_factory=dict)

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        if events:
            if self.memory.over():
                self._shed("memory_ceiling", len(events))
                events = []
            else:
                allowed = self.bucket.take(len(events))
                if allowed < len(events):
                    self._shed("rate_limit", len(events) - allowed)
                    events = events[:allowed]
        if events or checkpoint is not None:
            await self.inner.emit(events, checkpoint)

    def _shed(self, reason: str, n: int) -> None:
        self.drops.add(self.source_id, reason, n)
        now = self.clock()
        if now - self._last_log.get(reason, float("-inf")) >= _LOG_EVERY_S:
            self._last_log[reason] = now
            log.warning(
                "source %s: shedding events (%s); counted and reported to the collector",
                self.source_id,
                reason,
                extra={"fields": {"source": self.source_id, "reason": reason, "events": n}},
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
