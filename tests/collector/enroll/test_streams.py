"""The open-stream registry and the race that lets revocation stop a running handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from collector.enroll.identity import PeerIdentity
from collector.enroll.streams import OpenStreams, until_ended


async def test_end_marks_matching_streams_with_a_status() -> None:
    streams = OpenStreams()
    key_a, a = streams.add(PeerIdentity("web-01", "aa", 10))
    _, b = streams.add(PeerIdentity("web-02", "bb", 20))
    ended = streams.end(
        lambda i: i.serial == "aa", grpc.StatusCode.PERMISSION_DENIED, "{agent_id} out"
    )
    assert [i.agent_id for i in ended] == ["web-01"]
    assert (a.ended.is_set(), a.code, a.message) == (
        True,
        grpc.StatusCode.PERMISSION_DENIED,
        "web-01 out",
    )
    assert not b.ended.is_set()
    assert streams.end(lambda i: True, grpc.StatusCode.UNAUTHENTICATED, "x") == [b.identity]
    streams.remove(key_a)
    assert [i.agent_id for i in streams.identities()] == ["web-02"]
    assert len(streams) == 1


async def test_until_passes_items_through_and_stops_a_blocked_handler() -> None:
    cleaned = asyncio.Event()
    release = asyncio.Event()

    async def handler() -> AsyncIterator[bytes]:
        try:
            yield b"one"
            await release.wait()  # blocked, like a handler waiting for the agent's next message
            yield b"never"
        finally:
            cleaned.set()

    ended = asyncio.Event()
    got = []
    async for item in until_ended(handler(), ended):
        got.append(item)
        ended.set()
    assert got == [b"one"]
    await asyncio.wait_for(cleaned.wait(), 1)  # the handler was cancelled and cleaned up


async def test_until_ends_with_the_handler() -> None:
    async def handler() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    assert [item async for item in until_ended(handler(), asyncio.Event())] == [b"a", b"b"]
