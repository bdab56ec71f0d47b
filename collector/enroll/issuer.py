"""Signs agents' client certificates with the collector's CA (enrollment and renewal)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from canhgac.errors import TlsError
from collector.enroll.csr import CertificatePublicKey
from collector.storage.enrollment import AgentCertificate

# Clocks of agents and collector differ a little; a certificate valid from "now" could be
# refused by a peer whose clock is behind.
BACKDATE = dt.timedelta(minutes=5)


CaKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
_CA_KEY_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def agent_uri(agent_id: str) -> str:
    """The SAN URI naming an agent; the ingest port accepts only certificates that carry it."""
    return f"urn:canhgac:agent:{agent_id}"


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def _ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 10**9


@dataclass(frozen=True)
class IssuedCertificate:
    """A signed client certificate: its PEM for the agent, its record for the store."""

    pem: bytes
    record: AgentCertificate


class CertificateIssuer:
    """The collector's CA, able to sign client certificates for agents.

    A certificate says CN=<agent id>, SAN URI urn:canhgac:agent:<agent id>, extended key
    usage clientAuth only, and is valid for `validity` (never past the CA's own expiry).
    Construction fails with TlsError when the key is not the CA certificate's key or the
    certificate is not a CA: better to refuse to start than to hand out unusable certificates.
    """

    def __init__(
        self, ca_cert_pem: bytes, ca_key_pem: bytes, validity: dt.timedelta, location: str = ""
    ) -> None:
        try:
            cert = x509.load_pem_x509_certificate(ca_cert_pem)
            key = serialization.load_pem_private_key(ca_key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise TlsError(f"cannot load the CA: {exc}", location=location or None) from None
        if not isinstance(key, _CA_KEY_TYPES):
            raise TlsError(
                "the CA key must be EC, RSA, Ed25519 or Ed448", location=location or None
            )
        if key.public_key() != cert.public_key():
            raise TlsError(
                "the CA key does not match the CA certificate", location=location or None
            )
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise TlsError(
                "the CA certificate is not a CA (basicConstraints)", location=location or None
            )
        self._cert = cert
        self._key: CaKey = key
        self.ca_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.validity = validity

    def issue(
        self, agent_id: str, public_key: CertificatePublicKey, now: dt.datetime
    ) -> IssuedCertificate:
        not_before = now - BACKDATE
        not_after = min(now + self.validity, self._cert.not_valid_after_utc)
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Canh Gac"),
                        x509.NameAttribute(NameOID.COMMON_NAME, agent_id),
                    ]
                )
            )
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    # TLS 1.2 RSA key exchange encrypts with the key; harmless for client auth.
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(agent_uri(agent_id))]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        # Ed25519 and Ed448 sign without a separate hash.
        algorithm = (
            None
            if isinstance(self._key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            else hashes.SHA256()
        )
        cert = builder.sign(self._key, algorithm)
        record = AgentCertificate(
            serial=serial_hex(serial),
            agent_id=agent_id,
            not_before_ns=_ns(not_before),
            not_after_ns=_ns(not_after),
            issued_ns=_ns(now),
        )
        return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM), record)
