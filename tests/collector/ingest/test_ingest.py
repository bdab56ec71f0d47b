"""Ingest over a real mutual-TLS socket: acknowledgement, deduplication, and bad input of every
kind."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest

from canhgac.v1 import agent_pb2, events_pb2
from collector.app import CollectorApp
from tests.collector.enroll.helpers import enrolled_agent

from .conftest import hello, raw_stream, secure_channel

pytestmark = pytest.mark.integration


def auth_event(i: int, size: int = 0) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"ev-{i}",
        time_ns=1_700_000_000_000_000_000 + i,
        category="authentication",
        action="ssh_login",
        outcome=events_pb2.OUTCOME_FAILURE,
        original="x" * size,
        auth=events_pb2.AuthEvent(user="root", source_ip="203.0.113.7"),
    )


def batch(agent_id: str, seq: int, n: int, size: int = 0) -> bytes:
    b = agent_pb2.EventBatch(
        agent_id=agent_id, seq=seq, events=[auth_event(seq * 10_000 + i, size) for i in range(n)]
    )
    return agent_pb2.AgentMessage(batch=b).SerializeToString()


def metric(app: CollectorApp, name: str, **labels: str) -> float:
    value = app.registry.get_sample_value(name, labels)
    return value or 0.0


async def open_agent(app: CollectorApp, agent_id: str) -> tuple[grpc.aio.Channel, Any]:
    channel = await secure_channel(app, agent_id)
    call = raw_stream(channel)
    await call.write(hello(agent_id))
    welcome = await call.read()
    assert welcome.WhichOneof("message") == "welcome"
    # Right after the Welcome the collector states the in-flight window.
    flow = await call.read()
    assert flow.WhichOneof("message") == "flow_control"
    assert flow.flow_control.max_unacked_batches == app.config.ingest.max_unacked_batches
    assert flow.flow_control.pause_ms == 0
    return channel, call


async def test_an_agent_over_its_rate_is_told_to_pause(make_collector: Any) -> None:
    app: CollectorApp = await make_collector(max_events_per_second=100)
    channel, call = await open_agent(app, "fast-agent")
    await call.write(batch("fast-agent", 1, 150))  # within the burst of 200
    assert (await call.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    await call.write(batch("fast-agent", 2, 150))  # 300 > 200: 100 events of debt = 1 s
    assert (await call.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    flow = (await call.read()).flow_control
    assert 900 <= flow.pause_ms <= 1001
    assert metric(app, "canhgac_collector_throttled_batches_total") == 1
    # Nothing is dropped: both batches are stored.
    assert await app.store.run(app.store.store.count_events, agent_id="fast-agent") == 300
    await channel.close()


async def test_a_flooding_agent_does_not_hold_up_the_others(make_collector: Any) -> None:
    app: CollectorApp = await make_collector(max_events_per_second=100)
    flood_channel, flood = await open_agent(app, "flooder")
    calm_channel, calm = await open_agent(app, "calm-agent")
    await flood.write(batch("flooder", 1, 200))
    await flood.write(batch("flooder", 2, 300))  # 300 events of debt: a 3 s pause
    await flood.write(batch("flooder", 3, 10))  # sent anyway, ignoring the pause
    assert (await flood.read()).ack.seq == 1
    assert (await flood.read()).ack.seq == 2
    assert (await flood.read()).flow_control.pause_ms > 2000
    # The calm agent is served while the flooder's stream is not being read.
    await calm.write(batch("calm-agent", 1, 5))
    assert (await calm.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    store = app.store.store
    assert await app.store.run(store.count_events, agent_id="flooder") == 500
    # The flooder's third batch is only taken after its pause, and then stored, not dropped.
    assert (await flood.read()).ack.seq == 3
    assert await app.store.run(store.count_events, agent_id="flooder") == 510
    await flood_channel.close()
    await calm_channel.close()


async def exchange_hello(channel: grpc.aio.Channel, agent_id: str) -> Any:
    call = raw_stream(channel)
    await call.write(hello(agent_id))
    return await call.read()


async def test_batch_is_acknowledged_after_store_and_resend_is_deduplicated(
    make_collector: Any,
) -> None:
    app: CollectorApp = await make_collector()
    channel, call = await open_agent(app, "web-01")
    await call.write(batch("web-01", 1, 3))
    ack = (await call.read()).ack
    assert (ack.seq, ack.status, ack.events) == (1, agent_pb2.ACK_STATUS_STORED, 3)
    await call.write(batch("web-01", 1, 3))
    again = (await call.read()).ack
    assert again.status == agent_pb2.ACK_STATUS_DUPLICATE
    store = app.store.store
    assert await app.store.run(store.count_events, agent_id="web-01") == 3
    assert metric(app, "canhgac_collector_duplicate_batches_total") == 1
    await channel.close()

    # A reconnecting agent learns the last stored seq in its Welcome.
    channel2 = await secure_channel(app, "web-01")
    call2 = raw_stream(channel2)
    await call2.write(hello("web-01"))
    assert (await call2.read()).welcome.last_stored_seq == 1
    # A message kind this collector does not know (from a newer agent, here an empty one) is
    # skipped and counted; the stream goes on.
    await call2.write(b"")
    await call2.read()  # the FlowControl after the Welcome
    await call2.write(batch("web-01", 2, 1))
    assert (await call2.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    assert (
        metric(app, "canhgac_collector_errors_total", stage="ingest", error_type="unknown_message")
        == 1
    )
    await channel2.close()


async def test_malformed_protobuf_is_refused_and_counted(make_collector: Any) -> None:
    app: CollectorApp = await make_collector()
    channel = await secure_channel(app, "web-01")
    call = raw_stream(channel)
    await call.write(b"\xff\xff\xff\xff garbage that is not a protobuf")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed message" in (info.value.details() or "")
    assert metric(app, "canhgac_collector_errors_total", stage="ingest", error_type="decode") == 1
    await channel.close()


async def test_stream_must_start_with_hello(make_collector: Any) -> None:
    app: CollectorApp = await make_collector()
    channel = await secure_channel(app, "web-01")
    call = raw_stream(channel)
    await call.write(batch("web-01", 1, 1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert metric(app, "canhgac_collector_errors_total", stage="ingest", error_type="protocol") == 1
    await channel.close()


async def test_bad_agent_id_is_refused(make_collector: Any) -> None:
    app: CollectorApp = await make_collector()
    channel = await secure_channel(app, "web-01")
    call = raw_stream(channel)
    await call.write(hello("../../etc/passwd"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await channel.close()


async def test_oversized_and_overfull_batches_are_rejected_and_stream_goes_on(
    make_collector: Any,
) -> None:
    app: CollectorApp = await make_collector(max_batch_bytes=64 * 1024, max_batch_events=100)
    channel, call = await open_agent(app, "web-02")
    await call.write(batch("web-02", 1, 10, size=10_000))  # ~100 KB > 64 KiB
    rej = (await call.read()).reject
    assert (rej.seq, rej.code) == (1, "too_large")
    assert "limit is 65536" in rej.message
    await call.write(batch("web-02", 2, 101))
    rej2 = (await call.read()).reject
    assert (rej2.seq, rej2.code) == (2, "too_many_events")
    await call.write(batch("web-02", 3, 5))
    assert (await call.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    assert metric(app, "canhgac_collector_rejected_batches_total", reason="too_large") == 1
    assert metric(app, "canhgac_collector_rejected_batches_total", reason="too_many_events") == 1
    assert (
        metric(
            app,
            "canhgac_collector_discarded_events_total",
            stage="ingest",
            reason="too_many_events",
            intentional="true",
        )
        == 101
    )
    assert await app.store.run(app.store.store.count_events, agent_id="web-02") == 5
    await channel.close()


async def test_message_above_transport_limit_fails_that_stream_only(make_collector: Any) -> None:
    app: CollectorApp = await make_collector(max_batch_bytes=64 * 1024)
    good_channel, good = await open_agent(app, "good-agent")
    channel, call = await open_agent(app, "huge-agent")
    # 2.4 MB: far above max_batch_bytes, still below the transport limit: counted Reject.
    await call.write(batch("huge-agent", 1, 3, size=800_000))
    assert (await call.read()).reject.code == "too_large"
    assert metric(app, "canhgac_collector_rejected_batches_total", reason="too_large") == 1
    # 20 MB: above the transport limit (16 MiB here); gRPC itself ends that stream.
    await call.write(batch("huge-agent", 2, 4, size=5_000_000))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await good.write(batch("good-agent", 1, 2))
    assert (await good.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    await channel.close()
    await good_channel.close()


async def test_garbage_bytes_on_the_port_do_not_stop_the_collector(
    make_collector: Any, tmp_path: Path
) -> None:
    app: CollectorApp = await make_collector()
    # Garbage after a complete mutual-TLS handshake, so it reaches the HTTP/2 layer.
    cert, key = (await enrolled_agent(app, "garbage")).write(tmp_path / "client")

    def send_garbage(tls: bool) -> None:
        with socket.create_connection(("127.0.0.1", app.grpc_port), timeout=5) as raw:
            if tls:
                ctx = ssl.create_default_context(
                    cafile=str(app.config.state_dir / "pki" / "ca.crt")
                )
                ctx.load_cert_chain(cert, key)
                ctx.set_alpn_protocols(["h2"])
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"\x00garbage, not HTTP/2\r\n" * 100)
                    s.recv(1024)
            else:
                raw.sendall(b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01 not a TLS hello" * 100)
                raw.recv(1024)

    await asyncio.to_thread(send_garbage, False)
    await asyncio.to_thread(send_garbage, True)
    channel, call = await open_agent(app, "after-garbage")
    await call.write(batch("after-garbage", 1, 1))
    assert (await call.read()).ack.status == agent_pb2.ACK_STATUS_STORED
    await channel.close()


async def test_plaintext_client_cannot_talk_to_tls_port(make_collector: Any) -> None:
    app: CollectorApp = await make_collector()
    # Plaintext on purpose: the test shows the TLS port refuses it.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await exchange_hello(channel, "plain")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_with_another_ca_is_refused(make_collector: Any, tmp_path: Any) -> None:
    import datetime as dt

    from collector.pki import create_ca

    app: CollectorApp = await make_collector()
    other_ca, _ = create_ca("someone else", dt.datetime.now(dt.UTC))
    creds = grpc.ssl_channel_credentials(root_certificates=other_ca)
    async with grpc.aio.secure_channel(f"localhost:{app.grpc_port}", creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await exchange_hello(channel, "wrong-trust")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
