"""Ends open streams whose certificate was revoked or has expired.

`canhgac-collector agents revoke` runs in another process and writes only to the store, so the
collector polls: every `interval_s` it asks the store which serials among those of its open
streams are revoked. The query is bounded by the number of open streams, and an idle collector
asks nothing. A revoked agent's stream therefore ends within one interval (2 s by default);
its reconnection is refused at Hello, and it cannot renew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from canhgac.errors import StorageError
from collector.enroll.identity import PeerIdentity
from collector.enroll.streams import OpenStreams
from collector.metrics import CollectorMetrics
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.enroll")

REVOKED_MESSAGE = (
    "certificate revoked: agent '{agent_id}' was revoked at the collector; "
    "it needs a new enrollment token"
)
EXPIRED_MESSAGE = (
    "certificate expired: agent '{agent_id}' did not renew in time; reconnect with a current "
    "certificate or re-enroll"
)


class RevocationWatcher:
    """Polls the store and ends the streams of revoked or expired certificates."""

    def __init__(
        self,
        streams: OpenStreams,
        store: StoreWorker,
        metrics: CollectorMetrics,
        interval_s: float,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._streams = streams
        self._store = store
        self._metrics = metrics
        self._interval_s = interval_s
        self._clock_ns = clock_ns

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except StorageError as exc:
                # Keep watching: the store may come back, and streams must not stay open
                # forever because one poll failed.
                self._metrics.errors.labels(stage="revocation", error_type="storage").inc()
                log.warning("revocation check failed: %s", exc)
            await asyncio.sleep(self._interval_s)

    async def check(self) -> int:
        """One poll; returns how many streams it ended."""
        identities = self._streams.identities()
        if not identities:
            return 0
        now = self._clock_ns()
        expired = self._streams.end(
            lambda i: i.not_after_ns <= now, grpc.StatusCode.UNAUTHENTICATED, EXPIRED_MESSAGE
        )
        self._closed("expired", expired)
        store = self._store.store
        revoked = await self._store.run(store.revoked_serials, [i.serial for i in identities])
        ended = self._streams.end(
            lambda i: i.serial in revoked, grpc.StatusCode.PERMISSION_DENIED, REVOKED_MESSAGE
        )
        self._closed("revoked", ended)
        return len(expired) + len(ended)

    def _closed(self, reason: str, identities: list[PeerIdentity]) -> None:
        for ident in identities:
            self._metrics.streams_closed.labels(reason=reason).inc()
            log.warning(
                "agent stream closed: certificate %s",
                reason,
                extra={"fields": {"agent_id": ident.agent_id, "serial": ident.serial}},
            )
