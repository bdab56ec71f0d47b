"""Puts enrollment together for the collector app: the issuer, the services, the watcher."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from canhgac.errors import TlsError
from collector.config import CollectorConfig
from collector.enroll.issuer import CertificateIssuer
from collector.enroll.revocation import RevocationWatcher
from collector.enroll.server import build_enroll_server
from collector.enroll.service import EnrollmentService
from collector.enroll.streams import OpenStreams
from collector.metrics import CollectorMetrics
from collector.pki import ServerCredentials
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.enroll")


def load_issuer(config: CollectorConfig) -> CertificateIssuer:
    """The CA that signs agents' certificates: state_dir/pki in mode auto (created by
    ensure_pki before this is called), tls.ca_file and tls.ca_key_file in mode files."""
    tls = config.tls
    if tls.mode == "files":
        assert tls.ca_file is not None  # required by the model in mode files
        assert tls.ca_key_file is not None
        cert_path, key_path = tls.ca_file, tls.ca_key_file
    else:
        cert_path = config.state_dir / "pki" / "ca.crt"
        key_path = config.state_dir / "pki" / "ca.key"
    try:
        cert, key = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the CA: {exc.strerror}", location=str(exc.filename)) from None
    return CertificateIssuer(
        cert, key, dt.timedelta(days=tls.agent_cert_days), location=str(key_path)
    )


async def renewal_unavailable(raw: bytes, context: Any) -> bytes:
    """Renew on a plaintext (insecure_dev) collector: there are no certificates to renew."""
    await context.abort(
        grpc.StatusCode.FAILED_PRECONDITION,
        "this collector runs without TLS (tls.mode insecure_dev): there is no certificate to renew",
    )
    raise AssertionError("unreachable: abort raises")


class EnrollmentWiring:
    """Enrollment for one collector: the Renew handler and the open-stream registry for the
    ingest server, plus the enrollment port and the revocation watcher it starts and stops.

    With `credentials` None (insecure_dev) there is no CA: no enrollment port, Renew refuses,
    and the watcher has no certificate-bearing streams to watch.
    """

    def __init__(
        self,
        config: CollectorConfig,
        credentials: ServerCredentials | None,
        store: StoreWorker,
        metrics: CollectorMetrics,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._config = config
        self._credentials = credentials
        self.streams = OpenStreams()
        self.service = (
            None
            if credentials is None
            else EnrollmentService(load_issuer(config), store, metrics, clock_ns)
        )
        self.watcher = RevocationWatcher(
            self.streams, store, metrics, config.ingest.revocation_poll_ms / 1000, clock_ns
        )
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def renew(self) -> Callable[[bytes, Any], Any]:
        return renewal_unavailable if self.service is None else self.service.renew

    async def start(self) -> None:
        listen = self._config.ingest.enroll_listen
        if self.service is not None and self._credentials is not None and listen:
            self.server, self.port = build_enroll_server(
                listen, self._credentials, self.service.enroll
            )
            await self.server.start()
        elif self.service is not None:
            log.info("enrollment port disabled (ingest.enroll_listen is null)")
        self._task = asyncio.create_task(self.watcher.run(), name="revocation")

    async def stop(self, grace: float) -> None:
        if self.server is not None:
            await self.server.stop(grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
