"""The running agent's grpclib channel against a real collector behind a TCP relay on
127.0.0.1: a connection that goes silent without closing (a half-open one) is noticed by the
keepalive within its configured time, and the shipper connects again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel

import agent.channel
import agent.shipper
from collector.app import CollectorApp
from tests.agent.test_enroll import agent_config, enrolled
from tests.agent.test_shipper_transport import Running, until

pytestmark = pytest.mark.integration


class Relay:
    """Forwards TCP to the collector; `freeze()` makes the open connections silent both ways
    (nothing forwarded, nothing closed), as when a peer or a middlebox vanishes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self.frozen: set[int] = set()
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if number in self.frozen:
                        continue  # swallowed: the other end hears nothing
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def freeze(self) -> None:
        self.frozen.update(range(1, self.connections + 1))

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"localhost:{self.server.sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def relay(port: int) -> AsyncIterator[Relay]:
    r = Relay(port)
    r.server = await asyncio.start_server(r._handle, "127.0.0.1", 0)
    try:
        yield r
    finally:
        r.server.close()


async def test_a_silent_connection_is_dropped_by_the_keepalive_and_reconnected(
    app: CollectorApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent.channel, "KEEPALIVE_TIME_S", 0.3)
    monkeypatch.setattr(agent.channel, "KEEPALIVE_TIMEOUT_S", 1.0)
    channels: list[Channel] = []

    def recording(*args: Any, **kwargs: Any) -> Channel:
        channel = agent.channel.open_channel(*args, **kwargs)
        channels.append(channel)
        return channel

    monkeypatch.setattr(agent.shipper, "open_channel", recording)
    config = agent_config(app, tmp_path)
    await enrolled(app, config)
    async with relay(app.grpc_port) as r:
        via_relay = agent_config(app, tmp_path, address=r.address)
        async with Running(via_relay, tmp_path) as run:
            await until(lambda: run.shipper.connected, "the stream", run.shipper)

            def first_ping_answered() -> bool:
                protocol = channels[0]._protocol
                if protocol is None:
                    return False
                connection = protocol.connection
                return (
                    connection.last_ping_sent is not None
                    and connection._close_by_ping_handler is None
                )

            await until(first_ping_answered, "a keepalive ping answered", run.shipper)
            r.freeze()
            # Within the keepalive's own times (here about 2 s), not asyncio's 30 s TLS
            # shutdown wait nor grpclib's 300 s between pings: 20 s is ample on a busy machine.
            await until(lambda: r.connections >= 2, "a new connection", run.shipper, timeout=20)
            await until(lambda: run.shipper.connected, "the stream again", run.shipper)
