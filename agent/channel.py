"""Channels to the collector: TLS verified against the configured CA, always.

With a client identity the channel is mutual TLS (the ingest port: Stream, Renew); without
one it authenticates only the collector (the enrollment port: Enroll).

The running agent's stream uses grpclib (`open_channel`), a pure-Python gRPC client over
asyncio and `ssl`, which the agent loads anyway: grpcio's C core would cost the long-running
process about 17 MB of its 40 MB budget. The one-shot commands (enroll, diagnose, and the
renewal child process) keep grpcio (`make_channel`), imported only when they run.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import TYPE_CHECKING

from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.protocol import H2Protocol

from agent.config import CollectorConnection
from agent.enroll.identity import ClientIdentity
from canhgac.errors import TlsError
from canhgac.netaddr import parse_host_port

if TYPE_CHECKING:
    import grpc

log = logging.getLogger("canhgac.agent.shipper")

STREAM_METHOD = "/canhgac.v1.AgentService/Stream"

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    # Reconnect pacing is ours (shipper backoff); keep gRPC's own short.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]

# The same keepalive as CHANNEL_OPTIONS (the collector permits pings every 10 s).
KEEPALIVE_TIME_S = 30.0
KEEPALIVE_TIMEOUT_S = 10.0


def _read_ca(conn: CollectorConnection) -> bytes:
    assert conn.ca_file is not None  # the config model requires it unless insecure_dev
    try:
        return conn.ca_file.read_bytes()
    except OSError as exc:
        raise TlsError(
            f"cannot read CA certificate: {exc.strerror}", location=str(conn.ca_file)
        ) from None


def _load_identity(ctx: ssl.SSLContext, identity: ClientIdentity) -> None:
    """The pair as read and checked by the shipper (not the files again, which a renewal may
    be replacing): `ssl` loads a chain from a path only, so it goes through a memory file."""
    pem = identity.cert_pem + b"\n" + identity.key_pem
    try:
        fd = os.memfd_create("canhgac-agent-identity", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux: a private temporary file, removed at once
        import tempfile  # about 1 MB with shutil, bz2 and lzma: only where there is no memfd

        with tempfile.NamedTemporaryFile(prefix="canhgac-identity-") as tmp:
            tmp.write(pem)
            tmp.flush()
            ctx.load_cert_chain(tmp.name)
        return
    try:
        os.write(fd, pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def tls_context(conn: CollectorConnection, identity: ClientIdentity | None) -> ssl.SSLContext:
    """TLS 1.2+, the collector's certificate verified against ca_file and its name checked,
    ALPN h2, and this agent's certificate when given."""
    ca = _read_ca(conn)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=ca.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(f"unusable CA certificate: {exc}", location=str(conn.ca_file)) from None
    ctx.set_alpn_protocols(["h2"])
    if identity is not None:
        try:
            _load_identity(ctx, identity)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"unusable agent certificate or key: {exc}") from None
    return ctx


class _Channel(Channel):
    """grpclib's Channel whose TLS connection, once closed (by the keepalive: the collector
    stopped answering), is given up after KEEPALIVE_TIMEOUT_S rather than after asyncio's
    30 s wait for the silent peer's TLS close_notify; only then does the stream fail."""

    async def _create_connection(self) -> H2Protocol:
        if self._ssl is None:
            return await super()._create_connection()
        _, protocol = await self._loop.create_connection(
            self._protocol_factory,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._config.ssl_target_name_override,
            ssl_shutdown_timeout=KEEPALIVE_TIMEOUT_S,
        )
        return protocol


def open_channel(
    conn: CollectorConnection, identity: ClientIdentity | None, *, address: str | None = None
) -> Channel:
    """A grpclib channel to `address` (default: the ingest address), presenting `identity`
    if given; it connects on its first call."""
    host, port = parse_host_port(address or conn.address)
    config = Configuration(
        _keepalive_time=KEEPALIVE_TIME_S,
        _keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        _keepalive_permit_without_calls=True,
        # grpclib waits this long between two pings whatever _keepalive_time says (default
        # 300 s): left so, a half-open connection would go unnoticed for over five minutes.
        _http2_min_sent_ping_interval_without_data=KEEPALIVE_TIME_S,
        ssl_target_name_override=conn.server_name or None,
    )
    if conn.insecure_dev:
        log.warning("connecting WITHOUT TLS (collector.insecure_dev): development only")
        return Channel(host, port, config=config)
    return _Channel(host, port, ssl=tls_context(conn, identity), config=config)


def make_channel(
    conn: CollectorConnection, identity: ClientIdentity | None, *, address: str | None = None
) -> grpc.aio.Channel:
    """A grpcio channel, for the one-shot commands (enroll, renew, diagnose)."""
    import grpc  # about 17 MB once running: never in the long-running agent

    options = list(CHANNEL_OPTIONS)
    target = address or conn.address
    if conn.insecure_dev:
        log.warning("connecting WITHOUT TLS (collector.insecure_dev): development only")
        return grpc.aio.insecure_channel(target, options=options)
    ca = _read_ca(conn)
    if conn.server_name:
        options.append(("grpc.ssl_target_name_override", conn.server_name))
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.cert_pem if identity else None,
    )
    return grpc.aio.secure_channel(target, creds, options=options)
