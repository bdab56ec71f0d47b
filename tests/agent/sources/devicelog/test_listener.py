"""The devicelog receiver over real UDP and TCP sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent.sources.devicelog.config import DeviceLogConfig
from agent.sources.devicelog.source import DeviceLogSource
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CollectingSink, context, running, wait_until

ASA = b"<166>%ASA-5-111008: User 'admin' executed the 'show running-config' command."
FORTI = (
    b'<189>date=2026-11-21 time=09:12:44 devname="FGT1" logid="0100044547" type="event" '
    b'subtype="system" level="information" user="admin" action="Add" cfgpath="firewall.policy"'
)


def config(**overrides: object) -> DeviceLogConfig:
    values: dict[str, object] = {
        "listeners": [
            {"transport": "udp", "address": "127.0.0.1", "port": 0},
            {"transport": "tcp", "address": "127.0.0.1", "port": 0},
        ]
    }
    values.update(overrides)
    return DeviceLogConfig.model_validate(values)


@asynccontextmanager
async def receiver(
    cfg: DeviceLogConfig | None = None,
) -> AsyncIterator[tuple[DeviceLogSource, CollectingSink]]:
    source, sink = DeviceLogSource(cfg or config()), CollectingSink()
    async with running(source, sink):
        await wait_until(lambda: len(source.bound) == len(source.config.listeners))
        yield source, sink


def port(source: DeviceLogSource, transport: str) -> int:
    return next(p for t, _, p in source.bound if t == transport)


def send_udp(source: DeviceLogSource, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port(source, "udp")))


async def tcp(source: DeviceLogSource) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port(source, "tcp"))


async def send_tcp(source: DeviceLogSource, *chunks: bytes) -> None:
    _, writer = await tcp(source)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def logs(sink: CollectingSink) -> list[events_pb2.LogRecord]:
    return [e.log for e in sink.events]


async def test_udp_datagrams_become_log_events() -> None:
    async with receiver() as (source, sink):
        send_udp(source, ASA, FORTI)
        await wait_until(lambda: len(sink.events) == 2)
    by_format = {e.log.format: e for e in sink.events}
    asa = by_format["cisco"]
    assert asa.source == "devicelog"
    assert asa.original == ASA.decode()
    assert asa.log.sender_ip == "127.0.0.1"
    assert (asa.log.name, asa.log.product, asa.log.fields["command"]) == (
        "ASA-5-111008",
        "asa",
        "show running-config",
    )
    assert by_format["fortigate"].log.fields["cfgpath"] == "firewall.policy"
    assert source.health.state == "running"
    assert source.health.events == 2


async def test_tcp_newline_and_octet_counting_framing_in_split_segments() -> None:
    framed = FORTI + b"\n"
    counted = b"%d %s" % (len(ASA), ASA)
    async with receiver() as (source, sink):
        # One newline frame and one octet-counted frame, cut in the middle of each.
        stream = framed + counted + b"\r\n" + b"<30>Nov 21 10:00:00 sw1 lldp[4]: neighbour up\n"
        cuts = [5, len(framed) - 3, len(framed) + 2, len(framed) + 40]
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        _, writer = await tcp(source)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            # A sender has no means to make the receiver read each piece alone; a pause lets
            # the receiver's loop read it before the next arrives. Were the kernel to join two
            # pieces into one read, the test would still pass, covering fewer cuts.
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(sink.events) == 3)
        writer.close()
        await writer.wait_closed()
    assert [log.format for log in logs(sink)] == ["fortigate", "cisco", "syslog"]
    assert sink.events[1].original == ASA.decode()
    assert logs(sink)[2].program == "lldp"


async def test_oversize_garbage_and_bad_frames_are_counted_and_the_listener_keeps_serving() -> None:
    cfg = config(max_message_bytes=600)
    async with receiver(cfg) as (source, sink):
        send_udp(source, b"<30>" + b"x" * 700, b"\x00\x01\x02\x03\xff", ASA)
        await send_tcp(
            source,
            b"%d <30>%s" % (704, b"y" * 700),  # counted frame over the limit: skipped whole
            b"\n" + b"z" * 700 + b"\n",  # newline frame over the limit
            b"0 <1>\n",  # a zero-length frame
            b"\x07\x08 bell\n",
            FORTI + b"\n",
            b"<30>cut in the middle",  # connection closed inside a frame
        )
        await wait_until(lambda: source.health.unparsed.get("truncated_frame") == 1)
        await wait_until(lambda: len(sink.events) == 2)
        send_udp(source, ASA)
        await wait_until(lambda: len(sink.events) == 3)
    assert source.health.unparsed == {
        "oversize": 3,
        "not_text": 2,
        "bad_frame_length": 1,
        "empty": 1,
        "truncated_frame": 1,
    }


async def test_connection_limit() -> None:
    async with receiver(config(max_tcp_connections=2)) as (source, sink):
        held = [await tcp(source) for _ in range(2)]
        for _, w in held:
            w.write(b"<30>hello\n")
            await w.drain()
        await wait_until(lambda: len(sink.events) == 2)
        reader, writer = await tcp(source)
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed at once
        await wait_until(lambda: source.health.unparsed.get("tcp_connection_limit") == 1)
        writer.close()
        for _, w in held:
            w.close()
            await w.wait_closed()
        # Slots are freed when the held connections end.
        await wait_until(lambda: source._connections == 0)
        await send_tcp(source, b"<30>after\n")
        await wait_until(lambda: len(sink.events) == 3)


async def test_unknown_senders_and_per_sender_vendor() -> None:
    cfg = config(
        only_listed_senders=True,
        senders=[{"network": "127.0.0.0/8", "vendor": "juniper"}],
    )
    async with receiver(cfg) as (source, sink):
        send_udp(source, b"<28>Nov 21 10:10:00 mx1 /kernel: tcp_auth_ok: Packet from 10.0.0.7:179")
        await wait_until(lambda: len(sink.events) == 1)
    assert sink.events[0].log.format == "juniper"
    refused = DeviceLogSource(config(only_listed_senders=True, senders=[{"network": "10.0.0.0/8"}]))
    assert not refused.offer(ASA, "127.0.0.1")
    assert refused.health.unparsed == {"unknown_sender": 1}


def test_rate_limit_per_sender() -> None:
    now = [100.0]
    source = DeviceLogSource(config(rate_limit_per_sender=5), monotonic=lambda: now[0])
    admitted = [source.offer(ASA, "10.0.0.1") for _ in range(30)]
    assert sum(admitted) == 10  # a burst of twice the rate
    assert source.health.unparsed == {"rate_limited": 20}
    assert source.offer(ASA, "10.0.0.2")  # another sender has its own budget
    now[0] += 1.0  # a second later: five more
    assert sum(source.offer(ASA, "10.0.0.1") for _ in range(10)) == 5


async def test_port_in_use_makes_the_source_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        cfg = config(listeners=[{"transport": "tcp", "address": "127.0.0.1", "port": taken}])
        source = DeviceLogSource(cfg)
        with pytest.raises(SourceUnavailableError, match=f"127.0.0.1:{taken}"):
            await source.run(context(), CollectingSink(), asyncio.Event())


async def test_a_pid_outside_int32_or_a_non_ascii_digit_does_not_stop_the_receiver() -> None:
    async with receiver() as (source, sink):
        send_udp(
            source,
            b"<30>Nov 21 10:00:00 sw1 lldp[99999999999]: neighbour up",  # BSD header, big pid
            b"<30>1 2026-11-21T10:00:00Z sw2 lldp 99999999999 - - neighbour up",  # RFC 5424
            "<30>1 2026-11-21T10:00:00Z sw3 lldp \u00b9 - - neighbour up".encode(),  # "¹"
            b"<30>Nov 21 10:00:00 mx1 rpd[99999999999]: bgp down",
        )
        await wait_until(lambda: len(sink.events) == 4)
        send_udp(source, ASA)
        await wait_until(lambda: len(sink.events) == 5)
    assert [log.pid for log in logs(sink)[:4]] == [0, 0, 0, 0]
    assert sink.events[4].log.format == "cisco"


async def test_one_sender_cannot_take_every_tcp_connection() -> None:
    async with receiver(config(max_tcp_connections=8)) as (source, sink):
        held = [await tcp(source) for _ in range(2)]
        for _, w in held:
            w.write(b"<30>hello\n")
            await w.drain()
        await wait_until(lambda: len(sink.events) == 2)
        # The same address again: refused and counted, however many slots are left.
        reader, writer = await tcp(source)
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        await wait_until(lambda: source.health.unparsed.get("tcp_sender_connection_limit") == 1)
        writer.close()
        # Another device is still served.
        _, writer2 = await asyncio.open_connection(
            "127.0.0.1", port(source, "tcp"), local_addr=("127.0.0.2", 0)
        )
        writer2.write(b"<30>from another device\n")
        await writer2.drain()
        await wait_until(lambda: len(sink.events) == 3)
        assert sink.events[2].log.sender_ip == "127.0.0.2"
        for w in (writer2, *(w for _, w in held)):
            w.close()
            await w.wait_closed()


async def test_a_parser_bug_is_counted_and_the_receiver_keeps_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.sources.devicelog import parser as device_parser

    real = device_parser.DeviceParser.parse

    def parse(self: device_parser.DeviceParser, data: bytes, vendor: str = "auto") -> object:
        if b"boom" in data:
            raise IndexError("a parser bug")
        return real(self, data, vendor)

    monkeypatch.setattr(device_parser.DeviceParser, "parse", parse)
    async with receiver() as (source, sink):
        send_udp(source, b"<30>boom")
        await wait_until(lambda: source.health.unparsed.get("parser_error") == 1)
        send_udp(source, ASA)
        await wait_until(lambda: len(sink.events) == 1)


async def test_a_failing_sink_ends_the_source_instead_of_leaving_it_deaf() -> None:
    class BrokenSink(CollectingSink):
        async def emit(self, events: object, checkpoint: object = None) -> None:
            raise OSError("spool on a full disk")

    source = DeviceLogSource(config())
    task = asyncio.create_task(source.run(context(), BrokenSink(), asyncio.Event()))
    await wait_until(lambda: len(source.bound) == 2)
    send_udp(source, ASA)
    await wait_until(task.done)  # without being stopped
    with pytest.raises(OSError, match="full disk"):
        task.result()


async def test_queued_messages_are_bounded_in_bytes_while_the_sink_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.sources.devicelog import source as device_source

    monkeypatch.setattr(device_source, "QUEUE_BYTES", 64 * 1024)
    gate = asyncio.Event()

    class SlowSink(CollectingSink):
        async def emit(self, events: Any, checkpoint: Any = None) -> None:
            await gate.wait()
            await super().emit(events, checkpoint)

    source, sink = DeviceLogSource(config(max_message_bytes=8192)), SlowSink()
    big = b"<30>" + b"x" * 4000
    async with running(source, sink):
        await wait_until(lambda: len(source.bound) == 2)
        for n in range(1, 41):  # 160 KB, one datagram at a time (no loss in the kernel)
            send_udp(source, big)

            def seen(n: int = n) -> bool:  # queued, in the sink's hands (1) or dropped
                return source._queue.qsize() + 1 + sum(source.health.unparsed.values()) >= n

            await wait_until(seen)
        assert source.health.unparsed.get("queue_full", 0) > 0
        assert source._queued_bytes <= 64 * 1024
        # A TCP sender waits for room rather than growing the queue.
        _, writer = await tcp(source)
        writer.write(b"<30>" + b"t" * 4000 + b"\n")
        await writer.drain()
        gate.set()
        await wait_until(lambda: any(e.log.message.startswith("ttt") for e in sink.events))
        writer.close()


async def test_an_octet_count_of_six_digits_skips_its_frame_and_keeps_the_next() -> None:
    huge = b"<30>" + b"y" * 99_996
    counted = b"%d %s" % (len(ASA), ASA)
    async with receiver() as (source, sink):
        await send_tcp(source, b"%d %s" % (len(huge), huge), counted)
        await wait_until(lambda: len(sink.events) == 1)
    assert sink.events[0].log.format == "cisco"
    assert source.health.unparsed == {"oversize": 1}
