"""The agent stream: validate, store durably, acknowledge, then hand to detection.

Messages arrive as raw bytes (the method is registered without a deserializer) so that a
malformed message is answered with INVALID_ARGUMENT and counted, instead of gRPC's generic
INTERNAL error that the application never sees.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from canhgac import __version__
from canhgac.errors import StorageError
from canhgac.v1 import agent_pb2
from collector.bus.base import Bus, StoredBatch
from collector.config import IngestConfig
from collector.enroll.identity import (
    NotAnAgentCertificateError,
    identity_from_pem,
    peer_certificate,
)
from collector.enroll.revocation import REVOKED_MESSAGE
from collector.ingest.committer import GroupCommitter
from collector.ingest.ratelimit import TokenBucket
from collector.metrics import CollectorMetrics
from collector.storage.base import AgentRecord, BatchToStore
from collector.storage.enrollment import REVOKED
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.ingest")

# Batch seqs are stored as signed 64-bit integers.
MAX_SEQ = 2**63 - 1

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StreamAbortError(Exception):
    """Ends one agent's stream with a gRPC status; other streams are unaffected."""

    def __init__(self, code: grpc.StatusCode, message: str, error_type: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


@dataclass
class _StreamState:
    agent_id: str = ""
    hostname: str = ""
    version: str = ""
    peer: str = ""
    # The PEM client certificate gRPC verified for this stream (None without TLS).
    certificate: bytes | None = None


def _parse(raw: bytes) -> agent_pb2.AgentMessage:
    msg = agent_pb2.AgentMessage()
    try:
        msg.ParseFromString(raw)
    except DecodeError as exc:
        raise StreamAbortError(
            grpc.StatusCode.INVALID_ARGUMENT, f"malformed message: {exc}", "decode"
        ) from None
    return msg


class IngestService:
    """Servicer for AgentService.Stream; one instance serves every agent."""

    def __init__(
        self,
        limits: IngestConfig,
        store: StoreWorker,
        committer: GroupCommitter,
        bus: Bus,
        metrics: CollectorMetrics,
        clock_ns: Callable[[], int] = time.time_ns,
        *,
        mutual_tls: bool = True,
    ) -> None:
        self._limits = limits
        # True: every stream must present an enrolled, unrevoked client certificate.
        self._mutual_tls = mutual_tls
        self._store = store
        self._committer = committer
        self._bus = bus
        self._metrics = metrics
        self._clock_ns = clock_ns

    async def stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        state = _StreamState(peer=context.peer(), certificate=peer_certificate(context))
        self._metrics.streams_open.inc()
        try:
            async for out in self._serve(requests, state):
                yield out.SerializeToString()
        except StreamAbortError as exc:
            self._metrics.errors.labels(stage="ingest", error_type=exc.error_type).inc()
            log.warning(
                "stream refused: %s",
                exc.message,
                extra={"fields": {"agent_id": state.agent_id, "peer": state.peer}},
            )
            await context.abort(exc.code, exc.message)
        finally:
            self._metrics.streams_open.dec()

    async def _serve(
        self, requests: AsyncIterator[bytes], state: _StreamState
    ) -> AsyncIterator[agent_pb2.CollectorMessage]:
        hello_seen = False
        limits = self._limits
        bucket = TokenBucket(limits.max_events_per_second, 2.0 * limits.max_events_per_second)
        async for raw in requests:
            msg = _parse(raw)
            kind = msg.WhichOneof("message")
            if not hello_seen:
                if kind != "hello":
                    raise StreamAbortError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        "the first message on a stream must be Hello",
                        "protocol",
                    )
                hello_seen = True
                yield await self._hello(msg.hello, state)
                yield agent_pb2.CollectorMessage(
                    flow_control=agent_pb2.FlowControl(
                        max_unacked_batches=limits.max_unacked_batches
                    )
                )
            elif kind == "batch":
                yield await self._batch(msg.batch, raw, state)
                wait = bucket.take(len(msg.batch.events))
                if wait > 0:
                    # Over its rate: tell the agent to pause, and read nothing more from this
                    # stream meanwhile, so the other agents keep their share.
                    self._metrics.throttled_batches.inc()
                    pause_ms = min(int(wait * 1000) + 1, 60_000)
                    yield agent_pb2.CollectorMessage(
                        flow_control=agent_pb2.FlowControl(
                            max_unacked_batches=limits.max_unacked_batches, pause_ms=pause_ms
                        )
                    )
                    await asyncio.sleep(pause_ms / 1000)
            elif kind == "heartbeat":
                await self._heartbeat(msg.heartbeat, state)
            elif kind == "hello":
                raise StreamAbortError(
                    grpc.StatusCode.INVALID_ARGUMENT, "Hello sent twice on one stream", "protocol"
                )
            else:
                # A message kind from a newer agent (or none at all): skip it, count it, and
                # keep the stream, as the compatibility rules promise.
                self._metrics.errors.labels(stage="ingest", error_type="unknown_message").inc()

    async def _hello(
        self, hello: agent_pb2.Hello, state: _StreamState
    ) -> agent_pb2.CollectorMessage:
        state.agent_id = await self._authenticate(hello, state)
        state.hostname = hello.hostname[:255]
        state.version = hello.agent_version[:64]
        last = await self._touch(state)
        log.info(
            "agent connected",
            extra={"fields": {"agent_id": state.agent_id, "peer": state.peer, "last_seq": last}},
        )
        return agent_pb2.CollectorMessage(
            welcome=agent_pb2.Welcome(
                collector_version=__version__,
                last_stored_seq=last,
                max_batch_events=self._limits.max_batch_events,
                max_batch_bytes=self._limits.max_batch_bytes,
                heartbeat_interval_ms=self._limits.heartbeat_interval_ms,
            )
        )

    async def _authenticate(self, hello: agent_pb2.Hello, state: _StreamState) -> str:
        """The stream's agent id: the one its client certificate names, which Hello must repeat.

        The certificate must be one this collector issued and has not revoked. Without TLS
        (insecure_dev) the Hello's word is all there is; only a revoked agent id is refused.
        """
        if not AGENT_ID_RE.match(hello.agent_id):
            raise StreamAbortError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "agent_id must be 1-128 characters of letters, digits, '.', '_' or '-'",
                "bad_agent_id",
            )
        store = self._store.store
        if state.certificate is None:
            if self._mutual_tls:
                # Unreachable through a port that requires client certificates; fail closed.
                raise StreamAbortError(
                    grpc.StatusCode.UNAUTHENTICATED, "no client certificate", "unauthenticated"
                )
            log.warning(
                "agent identified by its Hello alone (tls.mode insecure_dev): any client can "
                "claim any agent id; development only",
                extra={"fields": {"agent_id": hello.agent_id, "peer": state.peer}},
            )
            agent = await self._store.run(store.get_agent, hello.agent_id)
            if agent is not None and agent.enrollment_status == REVOKED:
                raise StreamAbortError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    REVOKED_MESSAGE.format(agent_id=hello.agent_id),
                    "revoked",
                )
            return hello.agent_id
        try:
            identity = identity_from_pem(state.certificate)
        except NotAnAgentCertificateError as exc:
            raise StreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED, str(exc), "not_agent_certificate"
            ) from None
        if hello.agent_id != identity.agent_id:
            raise StreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Hello names agent {hello.agent_id!r} but the client certificate is agent "
                f"{identity.agent_id!r}: an agent can only speak for itself",
                "identity_mismatch",
            )
        cert = await self._store.run(store.get_certificate, identity.serial)
        if cert is None or cert.agent_id != identity.agent_id:
            raise StreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the certificate of agent {identity.agent_id!r} was not issued by this "
                "collector: re-enroll",
                "unknown_certificate",
            )
        if cert.revoked_ns:
            raise StreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                REVOKED_MESSAGE.format(agent_id=identity.agent_id),
                "revoked",
            )
        return identity.agent_id

    def _reject(self, seq: int, code: str, message: str, events: int) -> agent_pb2.CollectorMessage:
        self._metrics.rejected_batches.labels(reason=code).inc()
        self._metrics.discarded.labels(stage="ingest", reason=code, intentional="true").inc(events)
        log.warning("batch rejected: %s", message, extra={"fields": {"seq": seq, "code": code}})
        return agent_pb2.CollectorMessage(
            reject=agent_pb2.Reject(seq=seq, code=code, message=message)
        )

    async def _batch(
        self, batch: agent_pb2.EventBatch, raw: bytes, state: _StreamState
    ) -> agent_pb2.CollectorMessage:
        n, size = len(batch.events), len(raw)
        self._metrics.received_batches.inc()
        self._metrics.received_events.inc(n)
        if batch.seq == 0:
            return self._reject(0, "bad_seq", "batch seq must start at 1", n)
        if batch.agent_id and batch.agent_id != state.agent_id:
            return self._reject(
                batch.seq, "agent_mismatch", "batch agent_id differs from the stream's agent", n
            )
        if n > self._limits.max_batch_events:
            return self._reject(
                batch.seq,
                "too_many_events",
                f"batch has {n} events; the limit is {self._limits.max_batch_events}",
                n,
            )
        if size > self._limits.max_batch_bytes:
            return self._reject(
                batch.seq,
                "too_large",
                f"batch is {size} bytes; the limit is {self._limits.max_batch_bytes}",
                n,
            )
        for ev in batch.events:
            # The stream's identity wins over whatever the event claims.
            ev.agent_id = state.agent_id
        if batch.seq > MAX_SEQ:
            return self._reject(batch.seq, "bad_seq", f"batch seq must be at most {MAX_SEQ}", n)
        started = time.perf_counter()
        try:
            stored = await self._committer.store_batch(
                BatchToStore(state.agent_id, batch.seq, batch.events, self._clock_ns())
            )
        except StorageError as exc:
            # Not acknowledged, so the agent keeps the batch and sends it again later.
            raise StreamAbortError(
                grpc.StatusCode.UNAVAILABLE,
                "the collector could not store the batch; it will be accepted on retry",
                "storage",
            ) from exc
        self._metrics.store_seconds.observe(time.perf_counter() - started)
        if stored:
            self._metrics.stored_events.inc(n)
            await self._bus.publish(StoredBatch(state.agent_id, batch.seq, list(batch.events), raw))
            self._metrics.bus_depth.set(self._bus.depth())
            status = agent_pb2.ACK_STATUS_STORED
        else:
            self._metrics.duplicate_batches.inc()
            status = agent_pb2.ACK_STATUS_DUPLICATE
        return agent_pb2.CollectorMessage(ack=agent_pb2.Ack(seq=batch.seq, status=status, events=n))

    async def _heartbeat(self, hb: agent_pb2.Heartbeat, state: _StreamState) -> None:
        await self._touch(state, status=hb.status.SerializeToString())

    async def _touch(self, state: _StreamState, status: bytes = b"") -> int:
        """Record that the agent is alive; return the highest seq stored for it."""
        now = self._clock_ns()
        store = self._store.store
        current = await self._store.run(store.get_agent, state.agent_id)
        last_seq = await self._store.run(store.last_seq, state.agent_id)
        record = AgentRecord(
            agent_id=state.agent_id,
            hostname=state.hostname or (current.hostname if current else ""),
            version=state.version or (current.version if current else ""),
            # Enrollment creates the record with first_seen_ns 0: the first stream sets it.
            first_seen_ns=current.first_seen_ns if current and current.first_seen_ns else now,
            last_seen_ns=now,
            last_seq=last_seq,
            peer=state.peer,
            status=status or (current.status if current else b""),
        )
        await self._store.run(store.upsert_agent, record)
        return last_seq
