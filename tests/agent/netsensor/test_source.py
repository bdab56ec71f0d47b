"""NetSensorSource: a fake capture feeding canned frames, and the real one in a namespace."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence

import pytest

from agent.netsensor.capture import (
    CaptureStats,
    FrameCapture,
    read_host_addresses,
)
from agent.netsensor.config import NetSensorConfig
from agent.netsensor.packet import Frame
from agent.netsensor.source import EMIT_CHUNK, NetSensorSource
from agent.sources.base import Checkpoint, SourceContext
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import wait_until

from .frames import SERVER, dns_exchange, syn_scan, tcp_session
from .netns import NetnsCapture, in_netns, netns_pair


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[events_pb2.Event]] = []

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[events_pb2.Event]:
        return [e for b in self.batches for e in b]


class FakeCapture:
    """Hands out canned frames in batches, then nothing; reports made-up kernel drops."""

    description = "fake capture"

    def __init__(self, frames: list[Frame], drops: int = 0, fail_open: Exception | None = None):
        self.frames = list(frames)
        self.drops = drops
        self.fail_open = fail_open
        self.opened = self.closed = False
        self.received = 0

    def open(self) -> None:
        if self.fail_open is not None:
            raise self.fail_open
        self.opened = True

    def read(self, max_frames: int, timeout_s: float) -> list[Frame]:
        out, self.frames = self.frames[:max_frames], self.frames[max_frames:]
        if not out and timeout_s:
            # As the real capture does when nothing arrives: block (briefly) until the timeout.
            time.sleep(min(timeout_s, 0.01))
        self.received += len(out)
        return out

    def stats(self) -> CaptureStats:
        return CaptureStats(self.received, self.drops)

    def close(self) -> None:
        self.closed = True


def ctx() -> SourceContext:
    return SourceContext(agent_id="a1", host="h1", clock_ns=time.time_ns)


async def run_until(
    source: NetSensorSource, sink: ListSink, done: Callable[[], bool]
) -> asyncio.Task[None]:
    """Run the source until `done()` holds (10 s at most), then stop it (which flushes)."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(ctx(), sink, stop))
    await wait_until(lambda: done() or task.done())
    stop.set()
    await asyncio.wait_for(task, 10)
    return task


async def test_canned_frames_become_flow_dns_and_attempt_events() -> None:
    frames = tcp_session() + dns_exchange() + syn_scan() + [Frame(b"\x00" * 5, 1)]
    capture = FakeCapture(frames, drops=3)
    src = NetSensorSource(
        NetSensorConfig(interface="eth9"),
        capture_factory=lambda c: capture,
        host_addresses=frozenset({SERVER}),
        poll_interval_s=0.05,
    )
    sink = ListSink()
    await run_until(src, sink, lambda: not capture.frames and "kernel_drop" in src.health.unparsed)
    assert capture.opened
    assert capture.closed
    by_action: dict[str, list[events_pb2.Event]] = {}
    for e in sink.events:
        assert e.source == "netsensor"
        assert e.agent_id == "a1"
        by_action.setdefault(e.action, []).append(e)
    ssh = [e.flow for e in by_action["flow"] if e.flow.src_port == 40000]
    assert len(ssh) == 1
    assert ssh[0].direction == "inbound"
    assert ssh[0].end_reason == "fin"
    assert ssh[0].interface == "eth9"
    assert (ssh[0].packets_to_server, ssh[0].packets_to_client) == (5, 3)
    answer = by_action["dns_answer"][0].dns
    assert answer.query_name == "example.test"
    assert answer.answers[0].data == "10.213.7.99"
    scans = [e.connection_attempts for e in by_action["connection_attempts"]]
    source_scope = [a for a in scans if a.scope == "source"]
    assert source_scope
    assert source_scope[0].distinct_dst_ports == 40
    assert src.health.state == "running"
    assert src.health.mode == "fake capture"
    assert src.health.unparsed["kernel_drop"] == 3
    assert sum(v for k, v in src.health.unparsed.items() if k != "kernel_drop") == 1
    assert "kernel drops" in src.health.detail
    assert src.health.events == len(sink.events)


async def test_events_are_emitted_in_chunks_of_at_most_500() -> None:
    query, answer = dns_exchange()
    frames = [
        Frame(f.data, f.time_ns + i, f.linktype, f.wire_length)
        for f in (query, answer)
        for i in range(700)
    ]
    capture = FakeCapture(frames)
    src = NetSensorSource(capture_factory=lambda c: capture, host_addresses=frozenset())
    sink = ListSink()
    await run_until(src, sink, lambda: not capture.frames)
    assert len([e for e in sink.events if e.action.startswith("dns_")]) == 1400
    assert max(len(b) for b in sink.batches) == EMIT_CHUNK


async def test_unavailable_capture_is_raised_and_nothing_runs() -> None:
    capture = FakeCapture([], fail_open=SourceUnavailableError("no CAP_NET_RAW"))
    src = NetSensorSource(capture_factory=lambda c: capture, host_addresses=frozenset())
    with pytest.raises(SourceUnavailableError):
        await src.run(ctx(), ListSink(), asyncio.Event())


async def test_a_failing_capture_ends_run_with_the_error_and_is_closed() -> None:
    class Broken(FakeCapture):
        def read(self, max_frames: int, timeout_s: float) -> list[Frame]:
            raise OSError(100, "Network is down")

    capture = Broken([])
    src = NetSensorSource(capture_factory=lambda c: capture, host_addresses=frozenset())
    with pytest.raises(OSError, match="Network is down"):
        await asyncio.wait_for(src.run(ctx(), ListSink(), asyncio.Event()), 10)
    assert capture.closed


@pytest.mark.integration
async def test_real_capture_on_a_veth_in_a_namespace_reports_the_connection() -> None:
    """A TCP connection from namespace a to a listener in b; the sensor captures in b."""
    with netns_pair() as pair:

        def make(config: NetSensorConfig) -> FrameCapture:
            return NetnsCapture(
                pair.b, config.interface, config.bpf_filter, config.snaplen, 1 << 20
            )

        server = pair.popen(
            pair.b,
            sys.executable,
            "-c",
            f"import socket; s = socket.create_server(({pair.b_ip!r}, 2222)); print('up', "
            "flush=True); c, _ = s.accept(); c.sendall(c.recv(100) * 2); c.close()",
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "up"
            src = NetSensorSource(
                NetSensorConfig(interface=pair.b_if, bpf_filter="tcp"),
                capture_factory=make,
                host_addresses=lambda iface: in_netns(pair.b, lambda: read_host_addresses(iface)),
                poll_interval_s=0.2,
            )
            sink = ListSink()
            stop = asyncio.Event()
            task = asyncio.create_task(src.run(ctx(), sink, stop))
            await wait_until(lambda: src.health.state == "running")
            client = (
                "import socket; c = socket.create_connection(("
                f"{pair.b_ip!r}, 2222), timeout=5); c.sendall(b'hello'); print(c.recv(100))"
            )
            out = await asyncio.to_thread(pair.exec, pair.a, sys.executable, "-c", client)
            assert "hellohello" in out.stdout, out.stderr
            # The FIN-ended flow comes out at the next poll.
            await wait_until(lambda: any(e.action == "flow" for e in sink.events))
            stop.set()
            await asyncio.wait_for(task, 10)
        finally:
            server.kill()
            server.wait()
    flows = [e.flow for e in sink.events if e.action == "flow"]
    assert len(flows) == 1, flows
    f = flows[0]
    assert (f.src_ip, f.dst_ip, f.dst_port) == (pair.a_ip, pair.b_ip, 2222)
    assert f.direction == "inbound"
    assert f.end_reason == "fin"
    assert f.bytes_to_server > 0
    assert f.packets_to_client >= 3
    assert src.health.mode == f"af_packet on {pair.b_if} filter 'tcp'"
    assert src.health.unparsed.get("kernel_drop", 0) == 0
