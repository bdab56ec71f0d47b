"""Builds the gRPC server for the agent service (thin wiring; logic is in service.py).

With TLS the ingest port requires a client certificate signed by the collector's CA on every
connection (mutual TLS): gRPC Python can only require client certificates for a whole port,
never for some methods, so Enroll, which an agent calls before it has a certificate, is served
on a port of its own (collector/enroll/server.py) and this one serves Stream and Renew.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from canhgac.errors import ConfigError
from collector.config import CollectorConfig
from collector.enroll.streams import OpenStreams, guard_stream
from collector.ingest.service import IngestService
from collector.pki import ServerCredentials

log = logging.getLogger("canhgac.collector.ingest")

SERVICE_NAME = "canhgac.v1.AgentService"

RawHandler = Callable[[bytes, Any], Awaitable[bytes]]


def _identity(data: bytes) -> bytes:
    return data


def build_server(
    config: CollectorConfig,
    service: IngestService,
    credentials: ServerCredentials | None,
    *,
    streams: OpenStreams,
    renew: RawHandler,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with Stream and Renew bound; returns (server, bound port).

    Streams are registered in `streams` so that revocation can end them.
    """
    limits = config.ingest
    # gRPC refuses anything above the transport limit before our handler sees it, so the
    # application cannot count it. Keep that limit well above our own (max_batch_bytes, which is
    # counted and answered with a Reject), so that only gross abuse meets the transport one.
    transport_limit = min(max(4 * limits.max_batch_bytes, 16 * 1024 * 1024), 256 * 1024 * 1024)
    server = grpc.aio.server(
        options=[
            # Without this gRPC sets SO_REUSEPORT, and a second collector on the same port
            # would start "successfully" and take half of the connections.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", transport_limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    handlers = {
        "Stream": grpc.stream_stream_rpc_method_handler(
            guard_stream(service.stream, streams),
            request_deserializer=_identity,
            response_serializer=_identity,
        ),
        "Renew": grpc.unary_unary_rpc_method_handler(
            renew, request_deserializer=_identity, response_serializer=_identity
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    if credentials is None:
        log.warning("ingest runs WITHOUT TLS (tls.mode insecure_dev): development only")
        port = server.add_insecure_port(limits.listen)
    else:
        # Fail closed: a connection without a certificate chaining to our CA never gets past
        # the handshake. Which certificates are revoked is checked per call (see service.py).
        creds = grpc.ssl_server_credentials(
            [(credentials.key, credentials.cert)],
            root_certificates=credentials.ca_cert,
            require_client_auth=True,
        )
        port = server.add_secure_port(limits.listen, creds)
    if port == 0:
        raise ConfigError(f"cannot listen on {limits.listen}", location="ingest.listen")
    return server, port
