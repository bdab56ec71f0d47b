"""Live alerts for the console: a hub that fans newly stored alerts out to open pages.

The detection worker calls `AlertHub.publish` with the alerts it has just stored; publish never
blocks and never raises into detection. Each page (`/alerts/stream`) holds a `Subscription`
with its filters and a bounded queue: when the page reads too slowly and the queue is full, the
oldest alert is dropped, the drop is counted, and the page is told to reload (it then reads the
list from the store, so nothing is lost from view). Alerts stored as "suppressed" are not
pushed. `close()` (collector shutdown) ends every stream, so uvicorn's graceful stop does not
wait on open responses. One user holds at most `STREAMS_PER_OWNER` streams (each costs a queue
and a share of every publish), and a stream re-checks its caller's access now and then, so a
disabled user or an expired session stops receiving alerts without reconnecting.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from collector.metrics import CollectorMetrics
from collector.storage.base import StoredAlert

HEARTBEAT_S = 15.0
QUEUE_LIMIT = 256
STREAMS_PER_OWNER = 8  # a few tabs of one operator; more is a leak or an abuse
RECHECK_S = 60.0


@dataclass(frozen=True)
class AlertFilter:
    """What one page shows: the same filters as the /alerts list (empty = any)."""

    min_severity: int = 0
    system_id: str = ""
    rule_id: str = ""
    status: str = ""
    host: str = ""

    def matches(self, stored: StoredAlert) -> bool:
        a = stored.alert
        return (
            a.severity >= self.min_severity
            and (not self.system_id or a.system_id == self.system_id)
            and (not self.rule_id or a.rule_id == self.rule_id)
            and (not self.status or stored.status == self.status)
            and (not self.host or a.host == self.host)
        )


class Subscription:
    """One page's queue. `next()` waits for alerts, a reload request, or the end."""

    def __init__(
        self, hub: AlertHub, alert_filter: AlertFilter, limit: int, owner: str = ""
    ) -> None:
        self.hub = hub
        self.filter = alert_filter
        self.owner = owner
        self._queue: collections.deque[StoredAlert] = collections.deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def offer(self, stored: StoredAlert) -> None:
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.overflowed = True
            self.hub.dropped("queue_full")
        self._queue.append(stored)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout: float) -> list[StoredAlert] | None:
        """Queued alerts (oldest first), [] on timeout; None once closed and emptied."""
        if not self._queue and not self.closed and not self.overflowed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        self._wake.clear()
        if self.closed and not self._queue:
            return None
        items = list(self._queue)
        self._queue.clear()
        return items


class AlertHub:
    """Fan-out of stored alerts to the console's live pages; see the module docstring."""

    def __init__(
        self,
        metrics: CollectorMetrics,
        *,
        queue_limit: int = QUEUE_LIMIT,
        per_owner: int = STREAMS_PER_OWNER,
    ) -> None:
        self._metrics = metrics
        self._queue_limit = queue_limit
        self._per_owner = per_owner
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    def has_room(self, owner: str) -> bool:
        """Whether `owner` may open another stream (see STREAMS_PER_OWNER)."""
        return sum(s.owner == owner for s in self._subscriptions) < self._per_owner

    def subscribe(self, alert_filter: AlertFilter, owner: str = "") -> Subscription:
        sub = Subscription(self, alert_filter, self._queue_limit, owner)
        if self.closed:
            sub.close()
            return sub
        self._subscriptions.add(sub)
        self._metrics.console_clients.set(len(self._subscriptions))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        self._subscriptions.discard(sub)
        self._metrics.console_clients.set(len(self._subscriptions))

    def publish(self, alerts: Sequence[StoredAlert]) -> None:
        """Offer each alert to every page whose filter it matches. Never blocks."""
        for stored in alerts:
            if stored.status == "suppressed":
                continue
            for sub in list(self._subscriptions):
                if sub.closed:
                    self.dropped("closed")
                elif sub.filter.matches(stored):
                    sub.offer(stored)

    def dropped(self, reason: str) -> None:
        self._metrics.console_dropped.labels(reason=reason).inc()

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def close(self) -> None:
        """End every stream (collector shutdown); later subscriptions end at once."""
        self.closed = True
        for sub in list(self._subscriptions):
            self.unsubscribe(sub)


async def sse_stream(
    sub: Subscription,
    render: Callable[[StoredAlert], str],
    *,
    heartbeat_s: float = HEARTBEAT_S,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
    recheck_s: float = RECHECK_S,
) -> AsyncIterator[str]:
    """The text/event-stream body of one page: `alert` events (data rendered by `render`, one
    line of JSON), a comment as heartbeat, and a final `reload` event after an overflow.
    `still_allowed` is asked before the first batch and then at most every `recheck_s`; the
    stream ends when it answers False. Unsubscribes when it ends, whether the page went away,
    the hub closed, it overflowed, or its caller lost access."""
    next_check = 0.0
    try:
        yield "retry: 5000\n\n"
        while True:
            items = await sub.next(heartbeat_s)
            if items is None:
                return
            if still_allowed is not None and time.monotonic() >= next_check:
                if not await still_allowed():
                    return
                next_check = time.monotonic() + recheck_s
            if sub.overflowed:
                yield "event: reload\ndata: {}\n\n"
                return
            if not items:
                yield ": heartbeat\n\n"
                continue
            for stored in items:
                yield f"event: alert\nid: {stored.row_id}\ndata: {render(stored)}\n\n"
    finally:
        sub.hub.unsubscribe(sub)
