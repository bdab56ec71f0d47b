"""The ingest port is mutual TLS: who may stream, as whom, and what revocation does."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent.enroll.keys import key_pem, new_key
from canhgac.v1 import agent_pb2
from collector import cli
from collector.app import CollectorApp
from collector.enroll.issuer import CertificateIssuer
from collector.pki import create_ca
from tests.collector.enroll.helpers import (
    RENEW,
    AgentCredentials,
    FakeClock,
    enrolled_agent,
    mtls_channel,
    running_collector,
)
from tests.collector.ingest.conftest import hello, raw_stream

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CollectorApp]:
    async with running_collector(tmp_path) as running:
        yield running


def metric(app: CollectorApp, name: str, **labels: str) -> float:
    return app.registry.get_sample_value(name, labels) or 0.0


def batch(agent_id: str, seq: int) -> bytes:
    b = agent_pb2.EventBatch(agent_id=agent_id, seq=seq)
    return agent_pb2.AgentMessage(batch=b).SerializeToString()


async def open_stream(app: CollectorApp, agent: AgentCredentials | None, agent_id: str) -> Any:
    """A stream that sent Hello; the caller reads the answer (or the refusal)."""
    channel = mtls_channel(app, agent)
    call = raw_stream(channel)
    call.channel = channel  # kept alive with the call, closed by the test
    await call.write(hello(agent_id))
    return call


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    await call.channel.close()
    return info.value


async def refused_at_connect(
    app: CollectorApp, agent: AgentCredentials | None
) -> grpc.aio.AioRpcError:
    """A stream whose TLS handshake fails: the first write already reports it."""
    async with mtls_channel(app, agent) as channel:
        call = raw_stream(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _hello_and_read(call, agent.agent_id if agent else "web-01")
    return info.value


async def _hello_and_read(call: Any, agent_id: str) -> None:
    await call.write(hello(agent_id))
    await call.read()


def foreign_agent(agent_id: str, *, same_ca_of: CollectorApp | None = None) -> AgentCredentials:
    """A well-formed agent certificate the collector never issued: signed by another CA, or by
    the collector's own CA key but behind enrollment's back."""
    if same_ca_of is None:
        ca_cert, ca_key = create_ca("someone else", dt.datetime.now(dt.UTC))
    else:
        pki = same_ca_of.config.state_dir / "pki"
        ca_cert, ca_key = (pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()
    issuer = CertificateIssuer(ca_cert, ca_key, dt.timedelta(days=1))
    key = new_key()
    issued = issuer.issue(agent_id, key.public_key(), dt.datetime.now(dt.UTC))
    return AgentCredentials(agent_id, issued.pem, key_pem(key), ca_cert)


async def expect_welcome(call: Any) -> None:
    """The collector answers Hello with a Welcome, then states the window (FlowControl)."""
    assert (await call.read()).WhichOneof("message") == "welcome"
    assert (await call.read()).WhichOneof("message") == "flow_control"


async def test_an_enrolled_agent_streams_as_itself(app: CollectorApp) -> None:
    agent = await enrolled_agent(app, "web-01")
    call = await open_stream(app, agent, "web-01")
    await expect_welcome(call)
    await call.write(batch("web-01", 1))
    assert (await call.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    await call.channel.close()


async def test_a_stream_without_a_client_certificate_is_refused(app: CollectorApp) -> None:
    err = await refused_at_connect(app, None)
    assert err.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_certificate_from_another_ca_is_refused(app: CollectorApp) -> None:
    err = await refused_at_connect(app, foreign_agent("web-01"))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert await app.store.run(app.store.store.get_agent, "web-01") is None


async def test_a_certificate_the_collector_did_not_issue_is_refused(app: CollectorApp) -> None:
    rogue = foreign_agent("web-01", same_ca_of=app)
    err = await refusal(await open_stream(app, rogue, "web-01"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (
        "the certificate of agent 'web-01' was not issued by this collector: re-enroll"
    )
    labels = {"stage": "ingest", "error_type": "unknown_certificate"}
    assert metric(app, "canhgac_collector_errors_total", **labels) == 1


async def test_the_collectors_own_server_certificate_is_no_agent(app: CollectorApp) -> None:
    pki = app.config.state_dir / "pki"
    server = AgentCredentials(
        "localhost",
        (pki / "server.crt").read_bytes(),
        (pki / "server.key").read_bytes(),
        (pki / "ca.crt").read_bytes(),
    )
    # Refused in the handshake: its extended key usage is serverAuth only. (Were it let
    # through, Hello would refuse it: it has no agent SAN URI and no enrollment record.)
    err = await refused_at_connect(app, server)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert await app.store.run(app.store.store.get_agent, "localhost") is None


async def test_an_agent_cannot_speak_for_another(app: CollectorApp) -> None:
    agent = await enrolled_agent(app, "web-01")
    await enrolled_agent(app, "web-02")
    err = await refusal(await open_stream(app, agent, "web-02"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (
        "Hello names agent 'web-02' but the client certificate is agent 'web-01': an agent can "
        "only speak for itself"
    )
    labels = {"stage": "ingest", "error_type": "identity_mismatch"}
    assert metric(app, "canhgac_collector_errors_total", **labels) == 1


async def test_revocation_closes_the_open_stream_and_refuses_the_agent(
    app: CollectorApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await enrolled_agent(app, "web-01")
    bystander = await enrolled_agent(app, "web-02")
    call = await open_stream(app, agent, "web-01")
    other = await open_stream(app, bystander, "web-02")
    await expect_welcome(call)
    await expect_welcome(other)

    # The CLI revokes through the store, as another process would.
    config = str(tmp_path / "collector.yaml")
    rc = await asyncio.to_thread(cli.main, ["agents", "revoke", "web-01", "--config", config])
    assert rc == 0
    assert "agent web-01 revoked (1 certificate(s))" in capsys.readouterr().out
    started = time.monotonic()
    err = await refusal(call)
    assert time.monotonic() - started < 2.0  # poll interval 0.2 s in these tests
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (
        "certificate revoked: agent 'web-01' was revoked at the collector; it needs a new "
        "enrollment token"
    )
    assert metric(app, "canhgac_collector_streams_closed_total", reason="revoked") == 1

    # Reconnecting is refused at Hello with the same words; the other agent is untouched.
    again = await refusal(await open_stream(app, agent, "web-01"))
    assert again.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "certificate revoked" in (again.details() or "")
    await other.write(batch("web-02", 1))
    assert (await other.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    await other.channel.close()

    # And the registry says so.
    rc = await asyncio.to_thread(cli.main, ["agents", "list", "--config", config])
    assert rc == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("web-01  [revoked]") for line in listing)
    assert any(line.startswith("web-02  [enrolled]") for line in listing)


async def test_a_revoked_agent_cannot_renew(app: CollectorApp) -> None:
    from agent.enroll.keys import csr_pem

    agent = await enrolled_agent(app, "web-01")
    await app.store.run(app.store.store.revoke_agent, "web-01", time.time_ns())
    async with mtls_channel(app, agent) as channel:
        renew = channel.unary_unary(
            RENEW,
            request_serializer=agent_pb2.RenewRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await renew(agent_pb2.RenewRequest(csr_pem=csr_pem(new_key())), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "certificate revoked" in (info.value.details() or "")
    labels = {"kind": "renew", "reason": "revoked"}
    assert metric(app, "canhgac_collector_enrollment_refusals_total", **labels) == 1


async def test_insecure_dev_identifies_by_hello_and_still_refuses_revoked_ids(
    tmp_path: Path,
) -> None:
    async with running_collector(tmp_path, tls_mode="insecure_dev") as app:
        assert app.enroll_port == 0
        # Plaintext on purpose: this test is about the insecure_dev mode itself.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            call = raw_stream(channel)
            await call.write(hello("dev-box"))
            await expect_welcome(call)
            await app.store.run(app.store.store.revoke_agent, "dev-box", time.time_ns())
            call2 = raw_stream(channel)
            await call2.write(hello("dev-box"))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call2.read()
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == (
            "certificate revoked: agent 'dev-box' was revoked at the collector; it needs a new "
            "enrollment token"
        )


async def test_a_stream_is_closed_when_its_certificate_expires(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_collector(tmp_path, clock) as app:
        agent = await enrolled_agent(app, "web-01")
        call = await open_stream(app, agent, "web-01")
        await expect_welcome(call)
        clock.now_ns += 91 * 24 * 3600 * 10**9
        err = await refusal(call)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.details() == (
            "certificate expired: agent 'web-01' did not renew in time; reconnect with a "
            "current certificate or re-enroll"
        )
        assert metric(app, "canhgac_collector_streams_closed_total", reason="expired") == 1
