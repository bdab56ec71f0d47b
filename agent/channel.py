"""The gRPC channel to the collector: TLS verified against the configured CA, always.

With a client identity the channel is mutual TLS (the ingest port: Stream, Renew); without
one it authenticates only the collector (the enrollment port: Enroll).
"""

from __future__ import annotations

import logging

import grpc

from agent.config import CollectorConnection
from agent.enroll.identity import ClientIdentity
from canhgac.errors import TlsError

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


def make_channel(
    conn: CollectorConnection, identity: ClientIdentity | None, *, address: str | None = None
) -> grpc.aio.Channel:
    """A channel to `address` (default: the ingest address), presenting `identity` if given."""
    options = list(CHANNEL_OPTIONS)
    target = address or conn.address
    if conn.insecure_dev:
        log.warning("connecting WITHOUT TLS (collector.insecure_dev): development only")
        return grpc.aio.insecure_channel(target, options=options)
    assert conn.ca_file is not None  # the config model requires it unless insecure_dev
    try:
        ca = conn.ca_file.read_bytes()
    except OSError as exc:
        raise TlsError(
            f"cannot read CA certificate: {exc.strerror}", location=str(conn.ca_file)
        ) from None
    if conn.server_name:
        options.append(("grpc.ssl_target_name_override", conn.server_name))
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.cert_pem if identity else None,
    )
    return grpc.aio.secure_channel(target, creds, options=options)
