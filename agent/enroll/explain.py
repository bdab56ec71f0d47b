"""What a failed call to the collector means for the operator, in words.

Apart from the Enroll and Renew calls (client.py) so that the shipper, which explains every
failed connection, does not load what enrollment needs (`cryptography`). It explains both
clients' failures: grpclib's (the running agent's stream) and grpcio's (enroll, renew),
without importing grpcio.
"""

from __future__ import annotations

import asyncio
import ssl

from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from h2.exceptions import H2Error

from agent.config import CollectorConnection
from agent.enroll.diagnose import TlsTarget, probe
from agent.enroll.identity import IdentityFiles
from canhgac.errors import CanhGacError, EnrollmentError, TlsError, TransportError

# Statuses whose details are the collector's own words about our request.
_REFUSALS = {"PERMISSION_DENIED", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "UNAUTHENTICATED"}

# grpclib's failures to connect or to keep the connection, which grpcio reports as UNAVAILABLE.
CONNECTION_ERRORS = (
    OSError,
    ssl.SSLError,
    StreamTerminatedError,
    ProtocolError,
    H2Error,  # HTTP/2 state errors on a connection the collector closed
    EOFError,
)


def status_of(exc: BaseException) -> tuple[str, str]:
    """The gRPC status name and details of a failed call, from either client."""
    if isinstance(exc, GRPCError):
        return exc.status.name, exc.message or ""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):  # grpc.aio.AioRpcError
        return str(code().name), str(details() or "")
    if isinstance(exc, CONNECTION_ERRORS):
        return "UNAVAILABLE", str(exc) or type(exc).__name__
    return "UNKNOWN", f"{type(exc).__name__}: {exc}"


async def explain(
    exc: BaseException, conn: CollectorConnection, address: str, files: IdentityFiles | None
) -> CanhGacError:
    """The failure of a call to `address` as an error an operator can act on.

    A refusal by the collector keeps the collector's message. A connection failure with TLS
    is diagnosed by repeating the handshake (see diagnose.py); without a diagnosis the gRPC
    status is reported as it is.
    """
    code, details = status_of(exc)
    if code in _REFUSALS:
        return EnrollmentError(f"the collector refused: {details}", reason=code.lower())
    if code == "UNIMPLEMENTED":
        return TransportError(
            f"{address} does not serve this call ({details}): check collector.address and "
            "collector.enroll_address"
        )
    if code == "UNAVAILABLE" and not conn.insecure_dev and conn.ca_file:
        target = TlsTarget(
            address,
            conn.ca_file,
            conn.server_name,
            files.cert_file if files else None,
            files.key_file if files else None,
        )
        verdict = await asyncio.to_thread(probe, target)
        if verdict:
            return TlsError(verdict, location=address)
    return TransportError(f"{code}: {details}", location=address)
