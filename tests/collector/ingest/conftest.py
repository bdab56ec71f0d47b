"""A real collector (gRPC over TLS on a loopback socket, SQLite file) for ingest tests."""

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

STREAM = "/canhgac.v1.AgentService/Stream"


def collector_config(tmp_path: Path, **ingest: Any) -> CollectorConfig:
    return parse_model(
        CollectorConfig,
        {
            "name": "test-province",
            "state_dir": str(tmp_path / "collector"),
            "ingest": {"listen": "127.0.0.1:0", **ingest},
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


def secure_channel(app: CollectorApp) -> grpc.aio.Channel:
    ca = (app.config.state_dir / "pki" / "ca.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.aio.secure_channel(f"localhost:{app.grpc_port}", creds)


def raw_stream(channel: grpc.aio.Channel) -> Any:
    """A stream call that sends raw bytes, so tests can send what no agent would."""
    return channel.stream_stream(
        STREAM,
        request_serializer=lambda b: b,
        response_deserializer=agent_pb2.CollectorMessage.FromString,
    )()


def hello(agent_id: str) -> bytes:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id=agent_id)).SerializeToString()
