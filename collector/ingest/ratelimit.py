"""Per-agent event rate limit: a token bucket, so one flooding agent cannot starve the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` events per second with bursts up to `burst`; `delay(n)` says how long to wait.

    A rate of 0 means unlimited. Taking more than the bucket holds is allowed (a batch is never
    split) and puts the bucket in debt, which the caller waits out before the next batch.
    """

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = self.burst
        self._at = self.clock()

    def take(self, n: int) -> float:
        """Take n tokens; return the seconds to wait before accepting more (0 when none)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
