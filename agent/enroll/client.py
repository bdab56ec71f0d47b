"""The Enroll and Renew calls, and what their failures mean for the operator.

Both fail closed: a verification error of any kind ends the call with a message saying what
was wrong, and nothing falls back to plaintext. The token goes into the Enroll request and
nowhere else: not into logs, not into errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from cryptography import x509

from agent.channel import make_channel
from agent.config import CollectorConnection
from agent.enroll.explain import explain as explain
from agent.enroll.identity import ClientIdentity, IdentityFiles
from agent.enroll.identity import utcnow as utcnow
from agent.enroll.keys import csr_pem, key_pem, new_key
from canhgac import __version__
from canhgac.errors import EnrollmentError, TlsError
from canhgac.v1 import agent_pb2

log = logging.getLogger("canhgac.agent.enroll")

ENROLL_METHOD = "/canhgac.v1.AgentService/Enroll"
RENEW_METHOD = "/canhgac.v1.AgentService/Renew"
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Enrolled:
    """What enrollment or renewal produced."""

    identity: ClientIdentity
    system_id: str


def _verify_response(
    response: agent_pb2.EnrollResponse, key: bytes, expected_agent_id: str | None
) -> ClientIdentity:
    """The certificate the collector returned, checked: our key, the agent id it announced,
    signed by the CA it announced."""
    cert_pem = response.certificate_pem.encode()
    try:
        identity = ClientIdentity.from_pem(cert_pem, key)
    except TlsError as exc:
        raise EnrollmentError(
            f"the collector returned an unusable certificate: {exc.message}", reason="bad_response"
        ) from None
    if identity.agent_id != response.agent_id or (
        expected_agent_id is not None and identity.agent_id != expected_agent_id
    ):
        raise EnrollmentError(
            f"the collector returned a certificate for {identity.agent_id!r}, not "
            f"{expected_agent_id or response.agent_id!r}",
            reason="bad_response",
        )
    try:
        ca = x509.load_pem_x509_certificate(response.ca_certificate_pem.encode())
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(ca)
    except (ValueError, TypeError) as exc:
        raise EnrollmentError(
            f"the returned certificate is not signed by the returned CA: {exc}",
            reason="bad_response",
        ) from None
    return identity


async def enroll(
    conn: CollectorConnection, files: IdentityFiles, token: str, hostname: str
) -> Enrolled:
    """Enroll with a single-use token: new key, CSR, Enroll, then the pair written to `files`."""
    if conn.insecure_dev:
        raise EnrollmentError(
            "enrollment needs TLS, and collector.insecure_dev is set: an insecure_dev agent "
            "connects without a certificate",
            reason="config",
        )
    key = new_key()
    request = agent_pb2.EnrollRequest(
        token=token.strip(), csr_pem=csr_pem(key), hostname=hostname, agent_version=__version__
    )
    address = conn.enroll_target()
    async with make_channel(conn, None, address=address) as channel:
        call = channel.unary_unary(
            ENROLL_METHOD,
            request_serializer=agent_pb2.EnrollRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        try:
            response = await call(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise await explain(exc, conn, address, None) from None
    identity = _verify_response(response, key_pem(key), None)
    files.write(identity.cert_pem, identity.key_pem)
    return Enrolled(identity, response.system_id)


async def renew(
    conn: CollectorConnection, files: IdentityFiles, current: ClientIdentity
) -> Enrolled:
    """A new key and certificate for the same agent, asked for over mutual TLS with `current`.

    The new pair replaces the old one on disk only once the new certificate is checked.
    """
    key = new_key()
    request = agent_pb2.RenewRequest(csr_pem=csr_pem(key), agent_version=__version__)
    async with make_channel(conn, current) as channel:
        call = channel.unary_unary(
            RENEW_METHOD,
            request_serializer=agent_pb2.RenewRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        try:
            response = await call(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise await explain(exc, conn, conn.address, files) from None
    identity = _verify_response(response, key_pem(key), current.agent_id)
    files.write(identity.cert_pem, identity.key_pem)
    log.info(
        "agent certificate renewed",
        extra={
            "fields": {
                "agent_id": identity.agent_id,
                "serial": identity.serial,
                "not_after": identity.not_after.isoformat(),
            }
        },
    )
    return Enrolled(identity, response.system_id)
