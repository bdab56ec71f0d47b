"""A real collector (gRPC over mutual TLS on a loopback socket, SQLite file) for ingest tests.

Test clients enroll like agents (a bound token, then the Enroll RPC on the enrollment port)
and connect to the ingest port with the certificate they got.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from canhgac.config import parse_model
from canhgac.v1 import agent_pb2
from collector.app import CollectorApp
from collector.config import CollectorConfig
from tests.collector.enroll.helpers import enrolled_agent, mtls_channel

STREAM = "/canhgac.v1.AgentService/Stream"


def collector_config(tmp_path: Path, **ingest: Any) -> CollectorConfig:
    return parse_model(
        CollectorConfig,
        {
            "name": "test-province",
            "state_dir": str(tmp_path / "collector"),
            "ingest": {"listen": "127.0.0.1:0", "enroll_listen": "127.0.0.1:0", **ingest},
            "tls": {"mode": "auto", "server_names": ["localhost"]},
            "detection": {"rule_paths": [str(Path(__file__).parents[3] / "rules")]},
            "http": {"enabled": False},
        },
        source="test",
    )


@pytest.fixture
async def make_collector(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    apps: list[CollectorApp] = []

    async def make(**ingest: Any) -> CollectorApp:
        app = CollectorApp(collector_config(tmp_path, **ingest))
        await app.start()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.stop(grace=0.5)


async def secure_channel(app: CollectorApp, agent_id: str) -> grpc.aio.Channel:
    """A mutual-TLS channel to the ingest port as agent `agent_id`, enrolled for it."""
    return mtls_channel(app, await enrolled_agent(app, agent_id))


def raw_stream(channel: grpc.aio.Channel) -> Any:
    """A stream call that sends raw bytes, so tests can send what no agent would."""
    return channel.stream_stream(
        STREAM,
        request_serializer=lambda b: b,
        response_deserializer=agent_pb2.CollectorMessage.FromString,
    )()


def hello(agent_id: str) -> bytes:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id=agent_id)).SerializeToString()
