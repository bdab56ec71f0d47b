"""The process source: process starts (exec) and exits, from cn_proc or by polling /proc."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from agent.sources.base import EventSink, Source, SourceContext
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2

from .batch import FLUSH_EVENTS, EventBatch
from .config import ProcessConfig
from .events import SOURCE_ID, end_event, start_event
from .ignore import IgnoredExecutables
from .netlink import ProcConnector, ProcConnectorError, parse_datagram
from .poller import ProcPoller
from .procfs import ProcReader
from .tracker import Observed, ProcessTracker
from .users import PasswdUsers, UserLookup

BATCH_WINDOW = 0.2  # seconds an event may wait so bursts go to the sink together
RECV_TIMEOUT = 0.5  # how often the receiving thread looks at the stop flag


class ProcessSource(Source):
    """Reports process starts (type start, action exec) and exits (type end, action exit).

    Contract:
    * Mode "netlink" (tried first in "auto"): a dedicated thread receives cn_proc events and
      describes each exec'd process from /proc at once (see ProcessTracker). Kernel drops
      (ENOBUFS) are counted as "netlink_overrun" and reading goes on.
    * Mode "poll" (config, or "auto" when netlink cannot be used): /proc is diffed every
      poll_interval_ms (see ProcPoller); `health.detail` says why and what may be missed.
    * Events go to the sink at most every ~200 ms or per 500, in chunks of at most 500.
    * `ignore_executables` are not reported; each skipped exec/exit counts "ignored_executable".
    * Raises SourceUnavailableError when mode "netlink" is configured but unusable, or when
      <proc_root> cannot be listed.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: ProcessConfig | None = None,
        *,
        proc_root: Path = Path("/proc"),
        etc_root: Path = Path("/etc"),
        users: UserLookup | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        connector_factory: Callable[[], ProcConnector] = ProcConnector,
    ) -> None:
        super().__init__()
        self.config = config or ProcessConfig()
        self._reader = ProcReader(proc_root)
        self._users: UserLookup = users or PasswdUsers(etc_root)
        self._monotonic_ns = monotonic_ns
        self._connector_factory = connector_factory
        self._ignore = IgnoredExecutables(self.config.ignore_executables)

    def _count(self, reason: str, n: int) -> None:
        self.health.count_unparsed(reason, n)

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        connector: ProcConnector | None = None
        why_not = ""
        if self.config.mode != "poll":
            connector = self._connector_factory()
            try:
                await asyncio.to_thread(connector.open)
            except ProcConnectorError as exc:
                connector, why_not = None, str(exc)
                if self.config.mode == "netlink":
                    self._unavailable(f"netlink unavailable: {why_not}; or set mode: poll")
        if connector is not None:
            self.health.mode, self.health.detail = "netlink", "kernel process events connector"
            await self._run_netlink(ctx, sink, stop, connector)
            return
        await self._run_poll(ctx, sink, stop, why_not)

    def _unavailable(self, detail: str) -> None:
        self.health.state, self.health.detail = "unavailable", detail
        raise SourceUnavailableError(detail, location=SOURCE_ID)

    # --- netlink mode -------------------------------------------------------------------

    async def _run_netlink(
        self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event, connector: ProcConnector
    ) -> None:
        batch = EventBatch(asyncio.get_running_loop())
        stopping = threading.Event()
        failure: list[BaseException] = []
        tracker = ProcessTracker(
            self._reader,
            max_tracked=self.config.max_tracked,
            ignore=self._ignore,
            count=self._count,
        )

        def receive() -> None:
            try:
                self._receive(ctx, connector, tracker, batch, stopping)
            except BaseException as exc:  # noqa: BLE001  # handed to the event loop
                failure.append(exc)
                batch.wake()

        thread = threading.Thread(target=receive, name="process-netlink", daemon=True)
        thread.start()
        self.health.state = "running"
        try:
            while not stop.is_set() and not failure:
                await _first_of(batch.ready, stop)
                batch.ready.clear()
                if not batch.full and not stop.is_set() and not failure:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), BATCH_WINDOW)
                await self._emit(sink, batch.take())
        finally:
            stopping.set()
            await asyncio.to_thread(thread.join)
            connector.close()
        await self._emit(sink, batch.take())
        if failure:
            self.health.state = "failed"
            raise failure[0]

    def _receive(
        self,
        ctx: SourceContext,
        connector: ProcConnector,
        tracker: ProcessTracker,
        batch: EventBatch,
        stopping: threading.Event,
    ) -> None:
        """The receiving thread: datagrams -> kernel events -> described process events."""
        # Seeding after subscribing: a process starting meanwhile is queued in the socket.
        tracker.seed()
        pending = list(connector.early)
        while not stopping.is_set():
            if pending:
                data: bytes | None = pending.pop(0)
            else:
                try:
                    data = connector.recv(RECV_TIMEOUT)
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    self._count("netlink_overrun", 1)
                    continue
            if data is None:
                continue
            kernel_events, problems = parse_datagram(data)
            for problem in problems:
                self._count(problem, 1)
            for kernel_event in kernel_events:
                observed = tracker.handle(kernel_event)
                if observed is not None:
                    batch.put(self._event(ctx, observed), stopping)

    def _event(self, ctx: SourceContext, observed: Observed) -> events_pb2.Event:
        # Kernel timestamps are CLOCK_MONOTONIC; shift them onto the wall clock.
        time_ns = observed.timestamp_ns + ctx.clock_ns() - self._monotonic_ns()
        if observed.kind == "start":
            return start_event(ctx, observed.info, time_ns, self._users)
        return end_event(ctx, observed.info, time_ns, self._users, observed.status)

    # --- poll mode ----------------------------------------------------------------------

    async def _run_poll(
        self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event, why_not: str
    ) -> None:
        try:
            await asyncio.to_thread(os.listdir, self._reader.root)
        except OSError as exc:
            self._unavailable(f"cannot list {self._reader.root}: {exc.strerror}")
        interval = self.config.poll_interval_ms / 1000
        every = f"polling /proc every {interval:.1f} s: processes shorter than that may be missed"
        self.health.mode = "poll"
        self.health.detail = f"netlink unavailable: {why_not}; {every}" if why_not else every
        poller = ProcPoller(self._reader, ignore=self._ignore, count=self._count)
        await asyncio.to_thread(poller.poll)  # the baseline: what runs now is not "started"
        self.health.state = "running"
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            result = await asyncio.to_thread(poller.poll)
            now = ctx.clock_ns()
            events = [
                start_event(ctx, i, i.start_time_ns or now, self._users) for i in result.started
            ]
            events += [end_event(ctx, i, now, self._users, None) for i in result.exited]
            await self._emit(sink, events)

    async def _emit(self, sink: EventSink, events: list[events_pb2.Event]) -> None:
        for i in range(0, len(events), FLUSH_EVENTS):
            chunk = events[i : i + FLUSH_EVENTS]
            await sink.emit(chunk)
            self.health.events += len(chunk)


async def _first_of(*flags: asyncio.Event) -> None:
    """Wait until any of the events is set."""
    waiters = [asyncio.ensure_future(flag.wait()) for flag in flags]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
