"""A token bucket per principal, so one SOC's poller cannot starve the collector's store.

Each principal (a token id or a user name) has a bucket of `burst` requests refilled at
`rate` per second; a request finding it empty is refused with 429 and `Retry-After`. Buckets
live in memory: a restart refills them, which is harmless for a limit meant to protect the
store, not to meter use. The clock is injected (nanoseconds), as for sessions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette

Clock = Callable[[], int]
DEFAULT_RATE = 20.0
DEFAULT_BURST = 100
# Above this many buckets, full ones are forgotten (a full bucket equals a new one).
_PRUNE_ABOVE = 10_000


@dataclass
class _Bucket:
    tokens: float
    at_ns: int


class ApiRateLimiter:
    """Per-key token buckets; `take` answers 0 when allowed, else the seconds to wait."""

    def __init__(
        self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, clock: Clock = time.time_ns
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> int:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        elapsed_s = max(0, now - bucket.at_ns) / 1e9
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed_s * self.rate)
        bucket.at_ns = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _prune(self, now: int) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + max(0, now - bucket.at_ns) / 1e9 * self.rate >= self.burst:
                del self._buckets[key]


def install_api_limiter(app: Starlette, rate: float, burst: int) -> None:
    """Set the API's limits on an app made by build_app (config http.api_rate, api_burst)."""
    app.state.api_limiter = ApiRateLimiter(rate, burst, app.state.auth.clock)


def limiter_of(app: Starlette) -> ApiRateLimiter:
    """The app's limiter; one with the default limits, on the app's clock, if none was set."""
    limiter = getattr(app.state, "api_limiter", None)
    if not isinstance(limiter, ApiRateLimiter):
        limiter = ApiRateLimiter(DEFAULT_RATE, DEFAULT_BURST, app.state.auth.clock)
        app.state.api_limiter = limiter
    return limiter
