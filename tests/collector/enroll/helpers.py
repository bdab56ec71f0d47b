"""Enrolling test agents against a real collector (CollectorApp) over its real ports.

Tokens are put in the collector's store directly (what `tokens create` does); everything
after that goes through the Enroll RPC on the enrollment port, so tests exercise the same
path as an agent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from agent.enroll.keys import csr_pem, key_pem, new_key
from canhgac.v1 import agent_pb2
from collector.app import CollectorApp
from collector.enroll.tokens import new_token

HOUR_NS = 3600 * 10**9
ENROLL = "/canhgac.v1.AgentService/Enroll"
RENEW = "/canhgac.v1.AgentService/Renew"


@dataclass
class FakeClock:
    """A collector clock tests move by hand; starts at the real time."""

    now_ns: int = field(default_factory=time.time_ns)

    def __call__(self) -> int:
        return self.now_ns


@asynccontextmanager
async def running_collector(
    tmp_path: Path,
    clock: Callable[[], int] = time.time_ns,
    *,
    tls_mode: str = "auto",
    **ingest: Any,
) -> AsyncIterator[CollectorApp]:
    """A started collector (mutual TLS, enrollment port, SQLite) whose configuration is also
    written to tmp_path/collector.yaml, for the CLI to act on the same store."""
    # Imported here: the ingest conftest imports this module for its own helpers.
    from tests.collector.ingest.conftest import collector_config

    ingest.setdefault("revocation_poll_ms", 200)
    config = collector_config(tmp_path, **ingest)
    tls = config.tls.model_copy(update={"mode": tls_mode})
    config = config.model_copy(update={"tls": tls})
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    app = CollectorApp(config, clock_ns=clock)
    await app.start()
    try:
        yield app
    finally:
        await app.stop(grace=0.5)


@dataclass(frozen=True)
class AgentCredentials:
    """An enrolled test agent: its id, certificate and key (PEM), and the collector's CA."""

    agent_id: str
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    system_id: str = ""

    def write(self, folder: Path) -> tuple[Path, Path]:
        """The pair as files (for Python's ssl module); returns (cert, key)."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{self.agent_id}.crt", folder / f"{self.agent_id}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        return cert, key


def ca_pem(app: CollectorApp) -> bytes:
    return (app.config.state_dir / "pki" / "ca.crt").read_bytes()


async def make_token(
    app: CollectorApp,
    *,
    agent_id: str = "",
    system_id: str = "",
    ttl_ns: int = HOUR_NS,
    now_ns: int | None = None,
) -> str:
    text, record = new_token(
        time.time_ns() if now_ns is None else now_ns,
        ttl_ns,
        system_id=system_id,
        agent_id=agent_id,
    )
    await app.store.run(app.store.store.create_token, record)
    return text


def enroll_channel(app: CollectorApp) -> grpc.aio.Channel:
    """Server-authenticated TLS to the enrollment port, as an agent without a certificate."""
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem(app))
    return grpc.aio.secure_channel(f"localhost:{app.enroll_port}", creds)


def mtls_channel(app: CollectorApp, agent: AgentCredentials | None) -> grpc.aio.Channel:
    """TLS to the ingest port, presenting the agent's certificate (or none)."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca_pem(app),
        private_key=agent.key_pem if agent else None,
        certificate_chain=agent.cert_pem if agent else None,
    )
    return grpc.aio.secure_channel(f"localhost:{app.grpc_port}", creds)


async def call_enroll(
    app: CollectorApp, token: str, csr: str, hostname: str = "test-host"
) -> agent_pb2.EnrollResponse:
    """The raw Enroll RPC; raises grpc.aio.AioRpcError when refused."""
    request = agent_pb2.EnrollRequest(token=token, csr_pem=csr, hostname=hostname)
    async with enroll_channel(app) as channel:
        call = channel.unary_unary(
            ENROLL,
            request_serializer=agent_pb2.EnrollRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        response: agent_pb2.EnrollResponse = await call(request, timeout=10)
        return response


async def enroll_with(
    app: CollectorApp,
    token: str,
    hostname: str = "test-host",
    key: ec.EllipticCurvePrivateKey | None = None,
) -> AgentCredentials:
    key = key or new_key()
    response = await call_enroll(app, token, csr_pem(key), hostname)
    return AgentCredentials(
        agent_id=response.agent_id,
        cert_pem=response.certificate_pem.encode(),
        key_pem=key_pem(key),
        ca_pem=response.ca_certificate_pem.encode(),
        system_id=response.system_id,
    )


async def enrolled_agent(app: CollectorApp, agent_id: str, system_id: str = "") -> AgentCredentials:
    """A certificate for `agent_id`, obtained through a bound token and the Enroll RPC."""
    token = await make_token(app, agent_id=agent_id, system_id=system_id)
    return await enroll_with(app, token)
