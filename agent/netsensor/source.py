"""The network sensor as an agent source: live capture -> Sensor -> the agent's sink."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from agent.netsensor.capture import (
    FrameCapture,
    af_packet_capture,
    read_host_addresses,
)
from agent.netsensor.config import NetSensorConfig
from agent.netsensor.sensor import Sensor
from agent.sources.base import EventSink, Source, SourceContext
from canhgac.v1 import events_pb2

SOURCE_ID = "netsensor"
EMIT_CHUNK = 500
READ_BATCH = 512
READ_TIMEOUT_S = 0.1

CaptureFactory = Callable[[NetSensorConfig], FrameCapture]
HostAddresses = Callable[[str], frozenset[str]]


class NetSensorSource(Source):
    """Captures frames on the configured interface and emits the Sensor's events.

    Contract:
    * One dedicated thread opens the capture, reads frames, feeds the Sensor and polls it
      every `poll_interval_s` (the Sensor is never touched by two threads, nor by the event
      loop); on stop it flushes the Sensor (flows end with reason "shutdown") and closes.
    * Events reach the sink in chunks of at most 500; the thread waits for the sink, so a
      slow sink shows as kernel drops (the receive buffer fills) rather than lost memory.
    * health.mode names the capture ("af_packet on eth0 filter 'tcp or udp'"); health.detail
      gives packets, kernel drops and flow-table figures; kernel drops ("kernel_drop") and the
      Sensor's decode failures (by reason) are counted in health.unparsed.
    * Without CAP_NET_RAW, or for a missing interface, run() raises SourceUnavailableError.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: NetSensorConfig | None = None,
        *,
        capture_factory: CaptureFactory = af_packet_capture,
        host_addresses: frozenset[str] | HostAddresses = read_host_addresses,
        poll_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.config = config or NetSensorConfig()
        self._capture_factory = capture_factory
        self._host_addresses = host_addresses
        self._poll_interval_s = poll_interval_s
        self._reported: dict[str, int] = {}

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        capture = self._capture_factory(self.config)
        self.health.mode = capture.description
        await asyncio.to_thread(capture.open)
        try:
            hosts = self._host_addresses
            if not isinstance(hosts, frozenset):
                hosts = await asyncio.to_thread(hosts, self.config.interface)
            sensor = Sensor(self.config, ctx, interface=self.config.interface, host_addresses=hosts)
        except BaseException:  # whatever failed (cancellation too): the capture closes; re-raised
            capture.close()
            raise
        self.health.state = "running"
        halt = threading.Event()
        done: asyncio.Future[None] = loop.create_future()
        worker = _CaptureWorker(self, capture, sensor, ctx, sink, loop, halt)

        def finish(exc: BaseException | None) -> None:
            if not done.done():
                done.set_exception(exc) if exc else done.set_result(None)

        thread = threading.Thread(
            target=worker.run, args=(finish,), name="netsensor-capture", daemon=True
        )
        thread.start()
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        waiters: set[asyncio.Future[Any]] = {stopping, done}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopping.cancel()
        await done

    def account(self, totals: dict[str, int], detail: str) -> None:
        """Bring health up to date from counter totals since start (on the event loop)."""
        for reason, total in totals.items():
            new = total - self._reported.get(reason, 0)
            if new > 0:
                self.health.count_unparsed(reason, new)
                self._reported[reason] = total
        self.health.detail = detail


def sensor_failures(sensor: Sensor) -> dict[str, int]:
    """What the Sensor read but did not turn into events, by reason (totals since start):
    decode and DNS parse failures, and what its bounds left out (DNS events over the per-second
    cap, addresses over max_attempt_keys, unanswered flows only summed in the attempt events)."""
    h = sensor.health
    bounded = {
        "dns_events_dropped": h.dns_events_dropped,
        "attempt_keys_dropped": h.attempt_keys_dropped,
        "flows_summarised": h.flows_summarised,
    }
    return {
        **h.decode_failures,
        **{f"dns_{k}": v for k, v in h.dns_parse_failures.items()},
        **{k: v for k, v in bounded.items() if v},
    }


def sensor_summary(sensor: Sensor) -> str:
    h = sensor.health
    return f"{h.flows_active} active flows, {h.flows_evicted} evicted"


class _CaptureWorker:
    """The capture thread's loop (see NetSensorSource's contract)."""

    def __init__(
        self,
        source: NetSensorSource,
        capture: FrameCapture,
        sensor: Sensor,
        ctx: SourceContext,
        sink: EventSink,
        loop: asyncio.AbstractEventLoop,
        halt: threading.Event,
    ) -> None:
        self.source = source
        self.capture = capture
        self.sensor = sensor
        self.ctx = ctx
        self.sink = sink
        self.loop = loop
        self.halt = halt

    def run(self, finish: Callable[[BaseException | None], None]) -> None:
        error: BaseException | None = None
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001  # handed to run() on the event loop
            error = exc
        finally:
            try:
                self.capture.close()
            except OSError as exc:
                error = error or exc
            self._account()
            self.loop.call_soon_threadsafe(finish, error)

    def _loop(self) -> None:
        interval = self.source._poll_interval_s
        next_poll = time.monotonic() + interval
        capture, sensor = self.capture, self.sensor
        while not self.halt.is_set():
            for frame in capture.read(READ_BATCH, READ_TIMEOUT_S):
                sensor.feed(frame)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                self._emit(sensor.poll(self.ctx.clock_ns()))
                self._account()
        # Frames already queued in the kernel belong to this run.
        for frame in capture.read(READ_BATCH * 64, 0):
            sensor.feed(frame)
        self._emit(sensor.flush(self.ctx.clock_ns()))

    def _account(self) -> None:
        try:
            stats = self.capture.stats()
        except OSError:
            return
        totals = {"kernel_drop": stats.kernel_drops, **sensor_failures(self.sensor)}
        detail = f"{stats.received} packets, {stats.kernel_drops} kernel drops, " + (
            sensor_summary(self.sensor)
        )
        self.loop.call_soon_threadsafe(self.source.account, totals, detail)

    def _emit(self, events: Sequence[events_pb2.Event]) -> None:
        for i in range(0, len(events), EMIT_CHUNK):
            chunk = events[i : i + EMIT_CHUNK]
            fut = asyncio.run_coroutine_threadsafe(self._emit_chunk(chunk), self.loop)
            while True:
                try:
                    fut.result(timeout=1.0)
                    break
                except concurrent.futures.TimeoutError:
                    if self.loop.is_closed():
                        return

    async def _emit_chunk(self, chunk: Sequence[events_pb2.Event]) -> None:
        await self.sink.emit(chunk)
        self.source.health.events += len(chunk)
