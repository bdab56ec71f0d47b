"""Key pairs and certificate signing requests made on the agent."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 key: small, fast, and what the collector's CA uses too."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted, like any service key: it is protected by its file mode (0600) and the
    # service's own sandbox; an agent that restarts unattended cannot type a passphrase.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def csr_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """A CSR proving possession of `key`. Its subject is a placeholder: the collector decides
    the agent id and what the certificate says."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canhgac-agent")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()
