"""What a failed call to the collector means for the operator, in words.

Apart from the Enroll and Renew calls (client.py) so that the shipper, which explains every
failed connection, does not load what enrollment needs (`cryptography`).
"""

from __future__ import annotations

import asyncio

import grpc

from agent.config import CollectorConnection
from agent.enroll.diagnose import TlsTarget, probe
from agent.enroll.identity import IdentityFiles
from canhgac.errors import CanhGacError, EnrollmentError, TlsError, TransportError

# Statuses whose details are the collector's own words about our request.
_REFUSALS = {
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
}


async def explain(
    exc: grpc.aio.AioRpcError, conn: CollectorConnection, address: str, files: IdentityFiles | None
) -> CanhGacError:
    """The failure of a call to `address` as an error an operator can act on.

    A refusal by the collector keeps the collector's message. A connection failure with TLS
    is diagnosed by repeating the handshake (see diagnose.py); without a diagnosis the gRPC
    status is reported as it is.
    """
    code, details = exc.code(), exc.details() or ""
    if code in _REFUSALS:
        return EnrollmentError(f"the collector refused: {details}", reason=code.name.lower())
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return TransportError(
            f"{address} does not serve this call ({details}): check collector.address and "
            "collector.enroll_address"
        )
    if code == grpc.StatusCode.UNAVAILABLE and not conn.insecure_dev and conn.ca_file:
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
    return TransportError(f"{code.name}: {details}", location=address)
