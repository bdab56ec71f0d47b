"""Hand-over of events from the receiving thread to the event loop, in batches."""

from __future__ import annotations

import asyncio
import threading

from canhgac.v1 import events_pb2

FLUSH_EVENTS = 500
MAX_PENDING = 10 * FLUSH_EVENTS


class EventBatch:
    """A thread-safe list of pending events that wakes the event loop sparingly.

    `put()` (any thread) wakes the loop when the list goes from empty to non-empty and when it
    reaches FLUSH_EVENTS; the loop then waits out the rest of its batching window unless the
    batch is `full`. When the loop falls behind (the sink waits on its budget), `put()` blocks
    at MAX_PENDING: the kernel's socket buffer then fills and its drops are counted, instead of
    this list growing without bound.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._events: list[events_pb2.Event] = []
        self.ready = asyncio.Event()

    @property
    def full(self) -> bool:
        return len(self._events) >= FLUSH_EVENTS

    def put(self, event: events_pb2.Event, stopping: threading.Event) -> None:
        with self._cond:
            while len(self._events) >= MAX_PENDING and not stopping.is_set():
                self._cond.wait(0.25)
            self._events.append(event)
            n = len(self._events)
        if n in (1, FLUSH_EVENTS):
            self._loop.call_soon_threadsafe(self.ready.set)

    def wake(self) -> None:
        self._loop.call_soon_threadsafe(self.ready.set)

    def take(self) -> list[events_pb2.Event]:
        with self._cond:
            events, self._events = self._events, []
            self._cond.notify_all()
        return events
