"""Who is on the other end of an RPC: the agent named by its verified client certificate.

gRPC has already verified the certificate chain against the collector's CA during the TLS
handshake (the ingest port requires a client certificate). What is left here: read the agent
id from the certificate, and insist that it is an agent certificate (the SAN URI the issuer
writes), so that no other certificate the CA signed, such as the collector's own server
certificate, can pass for an agent. Whether it is still valid (issued by this collector, not
revoked) is the store's answer, checked by the callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from collector.enroll.issuer import agent_uri, serial_hex
from collector.enroll.naming import AGENT_ID_RE


@dataclass(frozen=True)
class PeerIdentity:
    """The agent a verified client certificate names, with the certificate's serial and expiry."""

    agent_id: str
    serial: str
    not_after_ns: int


class NotAnAgentCertificateError(ValueError):
    """The verified certificate does not name an agent the way the issuer does."""


def identity_from_pem(pem: bytes) -> PeerIdentity:
    """Read the agent identity from a client certificate; NotAnAgentCertificateError if none."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise NotAnAgentCertificateError(f"unreadable client certificate: {exc}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    agent_id = str(names[0].value) if len(names) == 1 else ""
    if not AGENT_ID_RE.match(agent_id):
        raise NotAnAgentCertificateError("the client certificate's CN is not an agent id")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if agent_uri(agent_id) not in uris:
        raise NotAnAgentCertificateError(
            f"the client certificate lacks the SAN URI {agent_uri(agent_id)}: not an agent "
            "certificate from enrollment"
        )
    return PeerIdentity(
        agent_id=agent_id,
        serial=serial_hex(cert.serial_number),
        not_after_ns=int(cert.not_valid_after_utc.timestamp()) * 10**9,
    )


def peer_certificate(context: Any) -> bytes | None:
    """The PEM client certificate gRPC verified for this call, or None (no TLS client auth)."""
    pems = context.auth_context().get("x509_pem_cert") or []
    return bytes(pems[0]) if pems else None


def peer_identity(context: Any) -> PeerIdentity | None:
    """The identity of the call's verified client certificate; None when the call has none.

    Raises NotAnAgentCertificateError for a verified certificate that is not an agent's.
    """
    pem = peer_certificate(context)
    return None if pem is None else identity_from_pem(pem)
