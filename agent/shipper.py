"""Ships spooled batches to the collector over one bidirectional gRPC stream.

Per connection: Hello -> Welcome (the collector's last stored seq, acknowledged locally), then
batches in seq order with at most `max_unacked_batches` in flight; each Ack removes its batch
from the spool. After any failure the shipper backs off (exponential, with jitter) and
reconnects; everything not acknowledged is sent again with the same seq, and the collector's
deduplication makes that safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable, Mapping

from grpclib.client import Stream
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError

from agent.channel import STREAM_METHOD, open_channel
from agent.config import AgentConfig
from agent.enroll.explain import CONNECTION_ERRORS, explain
from agent.enroll.identity import ClientIdentity, IdentityFiles, utcnow
from agent.sources.base import SourceHealth
from agent.spooling import AsyncSpool
from agent.status import StatusReporter
from canhgac import __version__
from canhgac.errors import TlsError, TransportError
from canhgac.v1 import agent_pb2, events_pb2

log = logging.getLogger("canhgac.agent.shipper")

# How long the collector has to answer Hello. A collector that accepts the stream and then says
# nothing (wedged, or a proxy that holds the stream) answers keepalive pings at the HTTP/2
# layer, so the connection looks alive: without a limit the shipper would wait for ever while
# the spool fills. On expiry the stream is dropped and retried with the usual backoff.
WELCOME_TIMEOUT_S = 30.0

AgentStream = Stream[agent_pb2.AgentMessage, agent_pb2.CollectorMessage]


class Shipper:
    """Owns the connection to the collector; `connected` tells whether a stream is up."""

    def __init__(
        self,
        config: AgentConfig,
        spool: AsyncSpool,
        status: StatusReporter,
        sources: Callable[[], Mapping[str, SourceHealth]],
    ) -> None:
        self._cfg = config
        self._spool = spool
        self._status = status
        self._sources = sources
        self.agent_id = config.resolved_agent_id()
        self.connected = False
        self.last_error = ""
        # None without TLS (insecure_dev); otherwise read again for every connection, so a
        # renewed certificate is used from the next one on.
        self._identity_files = (
            None if config.collector.insecure_dev else IdentityFiles.for_config(config)
        )
        self._reconnect = asyncio.Event()
        # Set by the collector's FlowControl messages.
        self._flow_window: int | None = None
        self._pause_until = 0.0

    def reconnect(self) -> None:
        """End the current stream at the next batch boundary and connect again (used after
        the certificate is renewed); nothing unacknowledged is lost, it is simply resent."""
        self._reconnect.set()

    def _identity(self) -> ClientIdentity | None:
        """This agent's certificate for the next connection, checked locally first: an
        expired certificate is reported as such rather than as a failed handshake."""
        if self._identity_files is None:
            return None
        identity = self._identity_files.load()
        identity.check_current(utcnow())
        self.agent_id = identity.agent_id
        return identity

    async def _explain(self, exc: Exception) -> str:
        if isinstance(exc, (GRPCError, *CONNECTION_ERRORS)):
            conn = self._cfg.collector
            return str(await explain(exc, conn, conn.address, self._identity_files))
        return str(exc)

    async def run(self, stop: asyncio.Event) -> None:
        sc = self._cfg.shipper
        backoff = sc.backoff_initial_ms / 1000
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = sc.backoff_initial_ms / 1000
            # A call the collector ended (GRPCError), a connection that failed or broke (OSError,
            # ssl.SSLError, grpclib's StreamTerminatedError), or what we refuse ourselves.
            except (GRPCError, *CONNECTION_ERRORS, TransportError, TlsError) as exc:
                self.last_error = await self._explain(exc)
                log.warning("collector connection failed: %s", self.last_error)
            except Exception as exc:  # the shipper must outlive any bug
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("shipper error; reconnecting")
            finally:
                if self.connected:
                    # The connection worked: a new outage starts its backoff afresh.
                    backoff = sc.backoff_initial_ms / 1000
                self.connected = False
            if stop.is_set():
                break
            delay = backoff * random.uniform(0.5, 1.0)
            backoff = min(backoff * 2, sc.backoff_max_ms / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _session(self, stop: asyncio.Event) -> None:
        self._reconnect.clear()
        channel = open_channel(self._cfg.collector, self._identity())
        try:
            async with channel.request(
                STREAM_METHOD,
                Cardinality.STREAM_STREAM,
                agent_pb2.AgentMessage,
                agent_pb2.CollectorMessage,
            ) as call:
                await self._stream(call, stop)
        finally:
            channel.close()

    async def _stream(self, call: AgentStream, stop: asyncio.Event) -> None:
        sc = self._cfg.shipper
        hello = agent_pb2.Hello(
            agent_id=self.agent_id, agent_version=__version__, hostname=socket.gethostname()
        )
        await call.send_message(agent_pb2.AgentMessage(hello=hello))
        try:
            first = await asyncio.wait_for(self._recv(call), WELCOME_TIMEOUT_S)
        except TimeoutError:
            raise TransportError(
                f"collector did not answer Hello within {WELCOME_TIMEOUT_S:g} s"
            ) from None
        if first.WhichOneof("message") != "welcome":
            raise TransportError("collector did not answer Hello with Welcome")
        welcome = first.welcome
        await self._spool.ack_through(welcome.last_stored_seq)
        await self._report_drops()
        self.connected, self.last_error = True, ""
        log.info(
            "connected to collector",
            extra={
                "fields": {
                    "address": self._cfg.collector.address,
                    "last_stored_seq": welcome.last_stored_seq,
                }
            },
        )
        window = max(1, sc.max_unacked_batches)
        max_events = min(sc.batch_max_events, welcome.max_batch_events or sc.batch_max_events)
        # The collector's limit counts the whole message; the spool counts the events only.
        envelope = 1024
        max_bytes = min(
            sc.batch_max_bytes,
            max(1024, welcome.max_batch_bytes - envelope)
            if welcome.max_batch_bytes
            else sc.batch_max_bytes,
        )
        hb_interval = (welcome.heartbeat_interval_ms or sc.heartbeat_interval_ms) / 1000
        inflight: set[int] = set()
        room = asyncio.Condition()
        reader = asyncio.create_task(self._read(call, inflight, room))
        try:
            await self._send_loop(
                call, stop, reader, inflight, room, window, max_events, max_bytes, hb_interval
            )
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader  # its error, if any, was raised above
            # Reset the stream: leaving it open would wait for the collector's trailers.
            with contextlib.suppress(Exception):
                await call.cancel()

    @staticmethod
    async def _recv(call: AgentStream) -> agent_pb2.CollectorMessage:
        """The next message; the collector's status when it ended the call with an error."""
        msg = await call.recv_message()
        if msg is None:
            await call.recv_trailing_metadata()  # raises GRPCError unless the status is OK
            raise TransportError("collector ended the stream")
        return msg

    async def _send_loop(
        self,
        call: AgentStream,
        stop: asyncio.Event,
        reader: asyncio.Task[None],
        inflight: set[int],
        room: asyncio.Condition,
        window: int,
        max_events: int,
        max_bytes: int,
        hb_interval: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        last_sent = 0
        next_hb = loop.time()
        while not stop.is_set() and not self._reconnect.is_set():
            if reader.done():
                reader.result()  # re-raise the stream error
                raise TransportError("collector closed the stream")
            if loop.time() >= next_hb:
                await self._heartbeat(call)
                await self._report_drops()
                next_hb = loop.time() + hb_interval
            if loop.time() < self._pause_until:
                # The collector asked for a pause (rate limit): honour it, stay stoppable.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=min(0.5, self._pause_until - loop.time())
                    )
                continue
            async with room:
                if len(inflight) >= min(window, self._flow_window or window):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(room.wait(), timeout=0.5)
                    continue
            batch = await self._spool.batch_after(last_sent, max_events, max_bytes)
            if batch is None:
                await self._spool.wait_ready(timeout=min(0.5, max(0.0, next_hb - loop.time())))
                continue
            msg = agent_pb2.AgentMessage(
                batch=agent_pb2.EventBatch(
                    agent_id=self.agent_id,
                    seq=batch.seq,
                    events=batch.events,
                    created_ns=self._status.clock_ns(),
                )
            )
            async with room:
                inflight.add(batch.seq)
            await call.send_message(msg)
            last_sent = batch.seq

    async def _read(
        self,
        call: AgentStream,
        inflight: set[int],
        room: asyncio.Condition,
    ) -> None:
        while True:
            msg = await self._recv(call)
            kind = msg.WhichOneof("message")
            if kind == "ack":
                await self._spool.ack(msg.ack.seq)
                done = msg.ack.seq
            elif kind == "reject":
                # A refused batch would be refused again: drop it, count it, say why.
                rej = msg.reject
                n = await self._spool.ack(rej.seq)
                self._status.drops.add("shipper", f"rejected_{rej.code}", n)
                log.error(
                    "collector refused batch %d: %s (%s); %d events dropped",
                    rej.seq,
                    rej.message,
                    rej.code,
                    n,
                )
                done = rej.seq
            elif kind == "flow_control":
                fc = msg.flow_control
                self._flow_window = fc.max_unacked_batches or None
                self._pause_until = asyncio.get_running_loop().time() + fc.pause_ms / 1000
                continue
            else:
                continue
            async with room:
                inflight.discard(done)
                room.notify_all()

    async def _report_drops(self) -> None:
        """Drops not yet reported (spool full, damaged rows) become one agent_status event."""
        report = await self._spool.take_drop_report()
        if report is None:
            return
        status = events_pb2.AgentStatus(drops=report.to_proto())
        await self._spool.emit([self._status.event(self.agent_id, socket.gethostname(), status)])
        log.warning(
            "reporting events dropped while disconnected or on disk damage",
            extra={"fields": {"drops": dict(report.counts)}},
        )

    async def _heartbeat(self, call: AgentStream) -> None:
        stats = await self._spool.stats()
        status = self._status.build(self._sources(), stats.events, stats.bytes, stats.drops)
        hb = agent_pb2.Heartbeat(time_ns=self._status.clock_ns(), status=status)
        await call.send_message(agent_pb2.AgentMessage(heartbeat=hb))
