"""The gRPC channel to the collector: TLS verified against the configured CA, always."""

from __future__ import annotations

import logging

import grpc

from agent.config import CollectorConnection
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


def make_channel(conn: CollectorConnection) -> grpc.aio.Channel:
    options = list(CHANNEL_OPTIONS)
    if conn.insecure_dev:
        log.warning("connecting WITHOUT TLS (collector.insecure_dev): development only")
        return grpc.aio.insecure_channel(conn.address, options=options)
    assert conn.ca_file is not None  # the config model requires it unless insecure_dev
    try:
        ca = conn.ca_file.read_bytes()
    except OSError as exc:
        raise TlsError(
            f"cannot read CA certificate: {exc.strerror}", location=str(conn.ca_file)
        ) from None
    if conn.server_name:
        options.append(("grpc.ssl_target_name_override", conn.server_name))
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.aio.secure_channel(conn.address, creds, options=options)
