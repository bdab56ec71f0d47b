"""The collector's certificate authority and its own server certificate.

At first start (TLS mode "auto") the collector creates an ECDSA P-256 CA and a server
certificate signed by it, under `<state_dir>/pki/`. Agents trust the CA certificate; the
enrollment RPC (issue 3) will sign agents' CSRs with the same CA. Keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from canhgac.errors import TlsError

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class ServerCredentials:
    """PEM bytes the gRPC server needs."""

    ca_cert: bytes
    cert: bytes
    key: bytes


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Canh Gac"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(common_name: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """A new self-signed CA: (certificate PEM, private key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def issue_server_cert(
    ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str], now: dt.datetime
) -> tuple[bytes, bytes]:
    """A server certificate for `names` (DNS names or IPs) signed by the CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def issue_client_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    common_name: str,
    now: dt.datetime,
    validity: dt.timedelta,
    *,
    uri: str | None = None,
) -> tuple[bytes, bytes]:
    """A TLS client (clientAuth) certificate with a new P-256 key, signed by an EC CA:
    (certificate PEM, key PEM). `uri` adds a SubjectAlternativeName URI naming the holder
    (a child collector's `urn:canhgac:collector:<name>`). Backdated 5 minutes for clock skew."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if uri is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _cert_names(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def ensure_pki(
    pki_dir: Path, names: list[str], now: dt.datetime | None = None
) -> ServerCredentials:
    """Load the CA and server certificate from `pki_dir`, creating what is missing.

    The server certificate is re-issued when the configured names change or it expires within
    30 days; the CA is never replaced automatically (agents trust it).
    """
    now = now or dt.datetime.now(dt.UTC)
    ca_cert_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    cert_path, key_path = pki_dir / "server.crt", pki_dir / "server.key"
    try:
        if not ca_cert_path.exists():
            ca_cert, ca_key = create_ca("Canh Gac collector CA", now)
            _write_private(ca_key_path, ca_key)
            ca_cert_path.write_bytes(ca_cert)
        ca_cert, ca_key = ca_cert_path.read_bytes(), ca_key_path.read_bytes()
        renew = not cert_path.exists()
        if not renew:
            current = x509.load_pem_x509_certificate(cert_path.read_bytes())
            expiring = current.not_valid_after_utc - now < dt.timedelta(days=30)
            renew = expiring or _cert_names(cert_path.read_bytes()) != set(names)
        if renew:
            cert, key = issue_server_cert(ca_cert, ca_key, names, now)
            _write_private(key_path, key)
            cert_path.write_bytes(cert)
        return ServerCredentials(ca_cert, cert_path.read_bytes(), key_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot prepare TLS material: {exc}", location=str(pki_dir)) from None


def load_credentials(cert_file: Path, key_file: Path, ca_file: Path | None) -> ServerCredentials:
    """Operator-supplied certificate, key and (optionally) CA, checked to parse."""
    try:
        cert, key = cert_file.read_bytes(), key_file.read_bytes()
        ca = ca_file.read_bytes() if ca_file else b""
        x509.load_pem_x509_certificate(cert)
        serialization.load_pem_private_key(key, password=None)
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot load TLS material: {exc}", location=str(cert_file)) from None
    return ServerCredentials(ca, cert, key)
