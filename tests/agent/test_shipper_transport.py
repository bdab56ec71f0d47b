"""The shipper's gRPC client (grpclib) against a real collector (grpc.aio): mutual TLS, the
stream, and its failures in the operator's words, the same words grpcio's failures get."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from agent.config import AgentConfig
from agent.enroll.explain import explain, status_of
from agent.enroll.identity import IdentityFiles
from agent.enroll.keys import key_pem, new_key
from agent.shipper import Shipper
from agent.spool import SqliteSpool
from agent.spooling import AsyncSpool
from agent.status import StatusReporter
from canhgac.config import parse_model
from canhgac.errors import EnrollmentError, TlsError, TransportError
from canhgac.v1 import events_pb2
from collector.app import CollectorApp
from collector.enroll.issuer import CertificateIssuer
from collector.pki import create_ca
from tests.agent.sources.harness import wait_until
from tests.agent.test_enroll import agent_config, enrolled

pytestmark = pytest.mark.integration

DAY = dt.timedelta(days=1)
DEADLINE_S = 30.0


async def until(
    predicate: Callable[[], bool | Awaitable[bool]],
    what: str,
    shipper: Shipper,
    timeout: float = DEADLINE_S,
) -> None:
    """wait_until, with the shipper's last error (at the deadline) in the failure."""
    try:
        await wait_until(predicate, timeout)
    except AssertionError:
        last = shipper.last_error
        raise AssertionError(f"timed out waiting for {what}; last error: {last}") from None


class Running:
    def __init__(self, config: AgentConfig, tmp_path: Path) -> None:
        fast = config.shipper.model_copy(update={"backoff_initial_ms": 50, "backoff_max_ms": 200})
        self.config = config.model_copy(update={"shipper": fast})
        (tmp_path / "agent").mkdir(exist_ok=True)
        self.spool = AsyncSpool(
            SqliteSpool(tmp_path / "agent" / "spool.db", max_bytes=1 << 20),
            batch_max_events=10,
            batch_max_delay_ms=10,
        )
        self.status = StatusReporter(started_ns=time.time_ns())
        self.shipper = Shipper(self.config, self.spool, self.status, dict)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.shipper.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task
        self.spool.close()


async def test_events_go_over_mutual_tls_and_are_acknowledged(
    app: CollectorApp, tmp_path: Path
) -> None:
    config = agent_config(app, tmp_path)
    identity = await enrolled(app, config, agent_id="web-07")
    async with Running(config, tmp_path) as run:
        await until(lambda: run.shipper.connected, "the stream", run.shipper)
        assert [i.serial for i in app.enrollment.streams.identities()] == [identity.serial]
        status = events_pb2.AgentStatus()
        await run.spool.emit([run.status.event("web-07", "web-07", status) for _ in range(25)])

        async def drained() -> bool:
            return (await run.spool.stats()).events == 0

        await until(drained, "the spool drained", run.shipper)
        assert run.shipper.last_error == ""


async def test_a_certificate_from_another_ca_is_explained(
    app: CollectorApp, tmp_path: Path
) -> None:
    config = agent_config(app, tmp_path)
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("another collector", now)
    key = new_key()
    issued = CertificateIssuer(ca, ca_key, 90 * DAY).issue("web-01", key.public_key(), now)
    IdentityFiles.for_config(config).write(issued.pem, key_pem(key))
    expected = (
        f"localhost:{app.grpc_port}: the collector refused this agent's certificate: it is not "
        "signed by the collector's CA (enrolled with another collector?); re-enroll"
    )
    async with Running(config, tmp_path) as run:
        await until(lambda: run.shipper.last_error == expected, "the diagnosis", run.shipper)
        assert not run.shipper.connected


async def test_a_revoked_agent_hears_it(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path)
    identity = await enrolled(app, config)
    await app.store.run(app.store.store.revoke_agent, identity.agent_id, time.time_ns())
    async with Running(config, tmp_path) as run:
        await until(
            lambda: run.shipper.last_error.startswith("the collector refused: certificate revoked"),
            "the refusal",
            run.shipper,
        )


async def test_the_server_name_is_checked_and_can_be_set(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path)
    await enrolled(app, config)
    by_ip = agent_config(app, tmp_path, address=f"127.0.0.1:{app.grpc_port}")
    async with Running(by_ip, tmp_path) as run:
        await until(
            lambda: "the collector's certificate does not name 127.0.0.1" in run.shipper.last_error,
            "the name mismatch",
            run.shipper,
        )
    named = agent_config(
        app, tmp_path, address=f"127.0.0.1:{app.grpc_port}", server_name="localhost"
    )
    async with Running(named, tmp_path) as run:
        await until(lambda: run.shipper.connected, "the stream", run.shipper)


async def test_failures_map_to_the_same_words(tmp_path: Path) -> None:
    config = parse_model(
        AgentConfig,
        {"state_dir": str(tmp_path), "collector": {"insecure_dev": True}},
        source="agent.yaml",
    )
    conn = config.collector
    refused = await explain(GRPCError(Status.PERMISSION_DENIED, "revoked"), conn, "a:1", None)
    assert isinstance(refused, EnrollmentError)
    assert refused.reason == "permission_denied"
    assert str(refused) == "the collector refused: revoked"
    missing = await explain(GRPCError(Status.UNIMPLEMENTED, "no"), conn, "a:1", None)
    assert "does not serve this call" in str(missing)
    down = await explain(ConnectionRefusedError(111, "Connection refused"), conn, "a:1", None)
    assert isinstance(down, TransportError)
    assert str(down) == "a:1: UNAVAILABLE: [Errno 111] Connection refused"
    assert status_of(StreamTerminatedError("Connection lost"))[0] == "UNAVAILABLE"


async def test_an_unreachable_collector_is_named(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path)
    await enrolled(app, config)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    gone = agent_config(app, tmp_path, address=f"localhost:{closed}")
    async with Running(gone, tmp_path) as run:
        await until(
            lambda: f"cannot reach the collector at localhost:{closed}" in run.shipper.last_error,
            "the diagnosis",
            run.shipper,
        )


def test_an_unreadable_ca_is_a_tls_error(tmp_path: Path) -> None:
    from agent.channel import open_channel

    (tmp_path / "ca.crt").write_text("not a certificate")
    config = parse_model(
        AgentConfig,
        {"state_dir": str(tmp_path), "collector": {"ca_file": str(tmp_path / "ca.crt")}},
        source="agent.yaml",
    )
    with pytest.raises(TlsError, match="unusable CA certificate"):
        open_channel(config.collector, None)


def test_the_running_agent_loads_neither_grpcio_nor_pydantic() -> None:
    """grpcio (about 17 MB running) and pydantic (about 20 MB) stay with the one-shot commands
    and the collector."""
    import subprocess
    import sys

    code = (
        "import sys, agent.cli, agent.runtime, agent.shipper, agent.enroll.renewer;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'grpc', 'pydantic', 'pydantic_core', 'cryptography'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


async def test_a_collector_that_never_welcomes_is_left_and_retried(
    app: CollectorApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream opens and the connection answers pings, but Hello gets no Welcome: the
    shipper gives up on the stream after WELCOME_TIMEOUT_S, says so, and connects once the
    collector answers again."""
    import agent.shipper as shipper_module
    from collector.ingest.service import IngestService

    config = agent_config(app, tmp_path)
    await enrolled(app, config)
    answer = asyncio.Event()
    hello = IngestService._hello

    async def silent_until_told(self: IngestService, *args: Any) -> Any:
        await answer.wait()
        return await hello(self, *args)

    monkeypatch.setattr(IngestService, "_hello", silent_until_told)
    monkeypatch.setattr(shipper_module, "WELCOME_TIMEOUT_S", 0.5)
    async with Running(config, tmp_path) as run:
        await until(
            lambda: "did not answer Hello within 0.5 s" in run.shipper.last_error,
            "the timeout",
            run.shipper,
        )
        assert not run.shipper.connected
        answer.set()
        await until(lambda: run.shipper.connected, "the stream", run.shipper)
