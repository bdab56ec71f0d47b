"""The devicelog source: a syslog receiver for routers, switches and firewalls.

Contract:
* Listens on every configured listener: UDP (RFC 5426, one message per datagram) and TCP
  (RFC 6587: octet counting `LEN SP <PRI>...` when a frame starts with digits, a space and
  "<"; else newline framing). A listener that cannot be bound makes the source unavailable.
* Every message becomes one Event (category "network", type "info": never a host's
  authentication or syslog record, whose Linux rules must not meet it) with a LogRecord
  payload and `original` = the message text (see `parser`); what yields no event is counted by
  reason in `health.unparsed`, and the listener keeps serving: "oversize" (longer than
  `max_message_bytes`), "empty", "not_text", "bad_pri", "bad_structured_data",
  "malformed_fortigate", "unknown_sender" (with `only_listed_senders`), "rate_limited",
  "bad_frame_length", "truncated_frame" (a TCP connection closed inside a frame),
  "tcp_connection_limit" (connections refused), "tcp_sender_connection_limit" (connections
  refused because their address already holds a quarter of `max_tcp_connections`, at least
  2: one device cannot take every slot), "parser_error" (a message a parser failed on),
  "queue_full" (UDP datagrams read while the sink made the source wait, beyond `QUEUE_SIZE`
  messages or `QUEUE_BYTES`). Records of a configured vendor kept as generic ones are counted
  as "fallback:<vendor>". A sink that fails ends the source (the runtime reports it).
* There is no checkpoint: a network message is handed to the sink once. While the sink makes
  the source wait, TCP reading pauses (the senders' own buffers fill); UDP datagrams the kernel
  drops meanwhile cannot be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import ClassVar, Final

from agent.sources.base import EventSink, Source, SourceContext
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2

from .config import DeviceLogConfig
from .framing import Rfc6587Framer
from .parser import DeviceParser
from .record import DeviceRecord, RefusalError

log = logging.getLogger("canhgac.agent.devicelog")

SOURCE_ID: Final = "devicelog"
EMIT_CHUNK: Final = 500
# Messages read but not yet handed to the sink.
QUEUE_SIZE: Final = 10_000
# ... and their bytes: 10,000 messages of up to 64 KiB would be 640 MB in an agent whose
# budget is 40 MB. TCP reading waits for room; UDP datagrams beyond it are dropped, counted.
QUEUE_BYTES: Final = 4 * 1024 * 1024
_MAX_SENDER_STATE: Final = 4096
# Any int32 (LogRecord.pid); a larger pid is no process id.
_MAX_PID: Final = 2**31 - 1

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Bucket:
    tokens: float
    last: float


class DeviceLogSource(Source):
    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: DeviceLogConfig | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.config = config or DeviceLogConfig()
        self._monotonic = monotonic  # the rate limiter's clock
        self.health.mode = "listen"
        # (transport, address, port) of every bound listener, once running.
        self.bound: list[tuple[str, str, int]] = []
        self._senders: list[tuple[Network, str]] = [
            (ipaddress.ip_network(s.network), s.vendor) for s in self.config.senders
        ]
        self._sender_cache: dict[str, str | None] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._connections = 0
        self._per_sender: dict[str, int] = {}  # open TCP connections by address
        self._queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue(QUEUE_SIZE)
        self._queued_bytes = 0
        self._room = asyncio.Event()  # set when the consumer has freed queued bytes

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        parser = DeviceParser(ctx.clock_ns)
        transports: list[asyncio.BaseTransport] = []
        servers: list[asyncio.Server] = []
        handlers: set[asyncio.Task[None]] = set()
        try:
            for listener in self.config.listeners:
                where = f"{listener.transport} {listener.address}:{listener.port}"
                try:
                    if listener.transport == "udp":
                        transport, _ = await loop.create_datagram_endpoint(
                            lambda: _Datagrams(self),
                            local_addr=(listener.address, listener.port),
                        )
                        transports.append(transport)
                        sock = transport.get_extra_info("socket")
                    else:
                        server = await asyncio.start_server(
                            lambda r, w: self._track(handlers, self._connection(r, w)),
                            listener.address,
                            listener.port,
                            limit=self.config.max_message_bytes + 16,
                        )
                        servers.append(server)
                        sock = server.sockets[0]
                except OSError as exc:
                    raise SourceUnavailableError(f"cannot listen on {where}: {exc}") from exc
                host, port = sock.getsockname()[:2]
                self.bound.append((listener.transport, host, port))
            self.health.state = "running"
            self.health.detail = ", ".join(f"{t} {h}:{p}" for t, h, p in self.bound)
            consumer = asyncio.create_task(self._consume(ctx, parser, sink))
            stopping = asyncio.create_task(stop.wait())
            try:
                # A consumer that ended (the sink failed) ends the source: nothing would read
                # the queue any more, and the runtime reports the failure.
                await asyncio.wait([stopping, consumer], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                for server in servers:
                    server.close()
                for endpoint in transports:
                    endpoint.close()
                for task in list(handlers):
                    task.cancel()
                await asyncio.gather(*handlers, return_exceptions=True)
                if not consumer.done():  # hand what was read to the sink first
                    drained = asyncio.ensure_future(self._queue.join())
                    await asyncio.wait([drained, consumer], return_when=asyncio.FIRST_COMPLETED)
                    drained.cancel()
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer  # the sink's error, if it ended the consumer
        finally:
            for endpoint in transports:
                endpoint.close()
            for server in servers:
                server.close()

    # --- receiving ------------------------------------------------------------------------

    def offer(self, data: bytes, sender: str, *, wait: bool = False) -> bool:
        """Admit one message (size, sender, rate); False when it was refused and counted."""
        if len(data) > self.config.max_message_bytes:
            self.health.count_unparsed("oversize")
            return False
        if self._vendor_of(sender) is None:
            self.health.count_unparsed("unknown_sender")
            return False
        if not self._within_rate(sender):
            self.health.count_unparsed("rate_limited")
            return False
        return True

    def _enqueue_nowait(self, data: bytes, sender: str) -> None:
        if not self.offer(data, sender):
            return
        if self._queued_bytes + len(data) > QUEUE_BYTES:
            self.health.count_unparsed("queue_full")
            return
        try:
            self._queue.put_nowait((data, sender))
        except asyncio.QueueFull:
            self.health.count_unparsed("queue_full")
            return
        self._queued_bytes += len(data)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sender = _plain_ip(peer[0]) if peer else ""
        limit = self.config.max_tcp_connections
        if self._connections >= limit:
            self.health.count_unparsed("tcp_connection_limit")
            writer.close()
            return
        if self._per_sender.get(sender, 0) >= max(2, limit // 4):
            self.health.count_unparsed("tcp_sender_connection_limit")
            writer.close()
            return
        self._connections += 1
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1
        try:
            await self._read_frames(reader, sender)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._connections -= 1
            if (left := self._per_sender[sender] - 1) > 0:
                self._per_sender[sender] = left
            else:
                del self._per_sender[sender]
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_frames(self, reader: asyncio.StreamReader, sender: str) -> None:
        """Hand the connection's frames (see `framing`) to the queue until it closes."""
        framer = Rfc6587Framer(self.config.max_message_bytes, self.health.count_unparsed)
        idle = self.config.tcp_idle_timeout_s
        while True:
            async with asyncio.timeout(idle):
                chunk = await reader.read(65536)
            if not chunk:
                framer.end()
                return
            for frame in framer.feed(chunk):
                if self.offer(frame, sender):
                    # Waits while the sink does (the queue's count or bytes are at their limit).
                    while self._queued_bytes + len(frame) > QUEUE_BYTES:
                        self._room.clear()
                        await self._room.wait()
                    await self._queue.put((frame, sender))
                    self._queued_bytes += len(frame)

    def _track(self, tasks: set[asyncio.Task[None]], coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # --- admission ------------------------------------------------------------------------

    def _vendor_of(self, sender: str) -> str | None:
        """The sender's configured vendor ("auto" when unlisted and allowed), None if refused."""
        if sender in self._sender_cache:
            return self._sender_cache[sender]
        vendor: str | None = None if self.config.only_listed_senders else "auto"
        try:
            address = ipaddress.ip_address(sender)
        except ValueError:
            address = None
        if address is not None:
            for network, configured in self._senders:
                if address.version == network.version and address in network:
                    vendor = configured
                    break
        if len(self._sender_cache) >= _MAX_SENDER_STATE:
            self._sender_cache.clear()
        self._sender_cache[sender] = vendor
        return vendor

    def _within_rate(self, sender: str) -> bool:
        rate = self.config.rate_limit_per_sender
        if rate == 0:
            return True
        now = self._monotonic()
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= _MAX_SENDER_STATE:
                self._buckets.clear()
            bucket = self._buckets[sender] = _Bucket(tokens=2.0 * rate, last=now)
        bucket.tokens = min(2.0 * rate, bucket.tokens + (now - bucket.last) * rate)
        bucket.last = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    # --- to events ------------------------------------------------------------------------

    async def _consume(self, ctx: SourceContext, parser: DeviceParser, sink: EventSink) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < EMIT_CHUNK and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                events = [e for e in (self._event(ctx, parser, d, s) for d, s in batch) if e]
                if events:
                    await sink.emit(events)
                    self.health.events += len(events)
            finally:
                for data, _ in batch:
                    self._queued_bytes -= len(data)
                    self._queue.task_done()
                self._room.set()

    def _event(
        self, ctx: SourceContext, parser: DeviceParser, data: bytes, sender: str
    ) -> events_pb2.Event | None:
        vendor = self._vendor_of(sender) or "auto"
        before = dict(parser.fallbacks)
        try:
            record = parser.parse(data, vendor)
            event = _to_event(ctx, record, data, sender)
        except RefusalError as exc:
            self.health.count_unparsed(exc.reason)
            return None
        except Exception:  # a parser bug must not stop the receiver: count it, go on
            log.exception("devicelog: cannot read a message from %s", sender)
            self.health.count_unparsed("parser_error")
            return None
        if parser.fallbacks != before:
            self.health.count_unparsed(f"fallback:{vendor}")
        return event


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, source: DeviceLogSource) -> None:
        self._source = source

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._source._enqueue_nowait(data, _plain_ip(str(addr[0])))

    def error_received(self, exc: Exception) -> None:
        self._source.health.count_unparsed("udp_error")


def _plain_ip(address: str) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack socket) as the IPv4 address it is."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


def _to_event(
    ctx: SourceContext, record: DeviceRecord, data: bytes, sender: str
) -> events_pb2.Event:
    original = data.strip(b"\r\n\x00 ").decode("utf-8", errors="replace")
    log = events_pb2.LogRecord(
        format=record.format,
        name=record.name,
        program=record.program,
        pid=record.pid if 0 <= record.pid <= _MAX_PID else 0,
        message=record.message,
        hostname=record.hostname,
        facility=record.facility,
        severity=record.severity,
        vendor=record.vendor,
        product=record.product,
        sender_ip=sender,
        fields=record.fields,
    )
    return ctx.event(
        SOURCE_ID,
        category="network",
        type="info",
        action=record.name or record.format,
        time_ns=record.time_ns or None,
        original=original,
        log=log,
    )


__all__ = ["DeviceLogConfig", "DeviceLogSource"]
