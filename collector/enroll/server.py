"""The enrollment port: server-authenticated TLS, serving nothing but Enroll.

An enrolling agent has no client certificate yet, and gRPC Python requires client
certificates per port or not at all (`ssl_server_credentials(require_client_auth=...)` maps to
"request and require" or "don't request"; the "request but don't require" mode of the C core
is not exposed), so Enroll gets a port of its own and the ingest port stays strictly mutual
TLS. The agent still verifies this port's certificate against its CA file, and the token is
the credential. Requests are small, so the limits here are tight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from canhgac.errors import ConfigError
from collector.pki import ServerCredentials

log = logging.getLogger("canhgac.collector.enroll")

SERVICE_NAME = "canhgac.v1.AgentService"
# A CSR is at most 16 KiB; a whole EnrollRequest stays well below this.
MAX_REQUEST_BYTES = 64 * 1024
MAX_CONCURRENT_ENROLLMENTS = 16


def _identity(data: bytes) -> bytes:
    return data


def build_enroll_server(
    listen: str,
    credentials: ServerCredentials,
    enroll: Callable[[bytes, Any], Awaitable[bytes]],
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with only Enroll bound, on `listen`; returns (server, bound port)."""
    server = grpc.aio.server(
        options=[
            # Without this gRPC sets SO_REUSEPORT, and a second collector on the same port
            # would start "successfully" and take half of the connections.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_ENROLLMENTS,
    )
    handler = grpc.unary_unary_rpc_method_handler(
        enroll, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Enroll": handler}),)
    )
    creds = grpc.ssl_server_credentials(
        [(credentials.key, credentials.cert)], root_certificates=None, require_client_auth=False
    )
    port = server.add_secure_port(listen, creds)
    if port == 0:
        raise ConfigError(f"cannot listen on {listen}", location="ingest.enroll_listen")
    return server, port
