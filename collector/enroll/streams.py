"""Open agent streams by certificate, so that revocation and expiry can end them.

The ingest port's Stream handler is wrapped by `guard_stream`: each stream with a client
certificate is registered here while it runs, and `end()` (called by the RevocationWatcher)
makes the wrapper stop the stream and answer with a status saying why. The wrapped handler
is never modified: it is raced against the stream's "ended" event between messages.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from collector.enroll.identity import NotAnAgentCertificateError, PeerIdentity, peer_identity

StreamHandler = Callable[[AsyncIterator[bytes], Any], AsyncIterator[bytes]]


@dataclass
class OpenStream:
    """One registered stream; `ended` is set, with a status, when the collector ends it."""

    identity: PeerIdentity
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""


class OpenStreams:
    """The streams currently open on the ingest port, keyed by a private counter."""

    def __init__(self) -> None:
        self._streams: dict[int, OpenStream] = {}
        self._ids = itertools.count()

    def add(self, identity: PeerIdentity) -> tuple[int, OpenStream]:
        key = next(self._ids)
        stream = self._streams[key] = OpenStream(identity)
        return key, stream

    def remove(self, key: int) -> None:
        self._streams.pop(key, None)

    def identities(self) -> list[PeerIdentity]:
        return [s.identity for s in self._streams.values()]

    def end(
        self, predicate: Callable[[PeerIdentity], bool], code: grpc.StatusCode, message: str
    ) -> list[PeerIdentity]:
        """End every open stream whose identity matches; returns the identities ended.

        `message` may contain `{agent_id}`; it reaches the agent as the status details.
        """
        ended = []
        for stream in self._streams.values():
            if not stream.ended.is_set() and predicate(stream.identity):
                stream.code = code
                stream.message = message.format(agent_id=stream.identity.agent_id)
                stream.ended.set()
                ended.append(stream.identity)
        return ended

    def __len__(self) -> int:
        return len(self._streams)


def guard_stream(handler: StreamHandler, streams: OpenStreams) -> StreamHandler:
    """`handler`, registered in `streams` while it runs and stopped when `streams.end()` says.

    Calls without a client certificate (insecure_dev), or with one that is not an agent's (the
    handler refuses those at Hello), run unregistered.
    """

    async def guarded(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        try:
            identity = peer_identity(context)
        except NotAnAgentCertificateError:
            identity = None
        if identity is None:
            async for out in handler(requests, context):
                yield out
            return
        key, stream = streams.add(identity)
        try:
            async for out in until_ended(handler(requests, context), stream.ended):
                yield out
        finally:
            streams.remove(key)
        if stream.ended.is_set():
            await context.abort(stream.code, stream.message)

    return guarded


async def until_ended(source: AsyncIterator[bytes], ended: asyncio.Event) -> AsyncIterator[bytes]:
    """Items of `source` until it is exhausted or `ended` is set (then `source` is cancelled)."""
    ended_wait = asyncio.ensure_future(ended.wait())
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(source))
            await asyncio.wait({pending, ended_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                return  # ended: the finally clause cancels the pending read
            try:
                value = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield value
    finally:
        ended_wait.cancel()
        if pending is not None:
            # Cancelling the step throws CancelledError into the handler at its await, which
            # runs its own cleanup. Its outcome is collected even when it finished meanwhile
            # (we were cancelled ourselves), so nothing is logged as lost.
            pending.add_done_callback(_collect)
            pending.cancel()


def _collect(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()
