"""Checks on the certificate signing requests agents send (Enroll and Renew)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from canhgac.errors import EnrollmentError

MAX_CSR_BYTES = 16 * 1024
MIN_RSA_BITS = 2048

CertificatePublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


def _refuse(why: str) -> EnrollmentError:
    return EnrollmentError(f"certificate request refused: {why}", reason="bad_csr")


def csr_public_key(pem: str) -> CertificatePublicKey:
    """The key of a PEM CSR whose signature verifies and whose key is EC P-256, Ed25519 or RSA
    of at least 2048 bits. Everything else in it (subject, extensions) is ignored: the
    collector decides what the certificate says. EnrollmentError(reason="bad_csr") otherwise."""
    data = pem.encode()
    if not data.strip():
        raise _refuse("csr_pem is empty")
    if len(data) > MAX_CSR_BYTES:
        raise _refuse(f"csr_pem is larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(data)
        key = csr.public_key()
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _refuse("not a PEM PKCS#10 request") from None
    if not signature_ok:
        raise _refuse("its signature does not verify (was it signed with the requested key?)")
    return check_key(key)


def check_key(key: object) -> CertificatePublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise _refuse(f"EC keys must be on P-256, not {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _refuse(f"RSA keys must have at least {MIN_RSA_BITS} bits, not {key.key_size}")
        return key
    raise _refuse(f"unsupported key type {type(key).__name__} (use EC P-256, Ed25519 or RSA)")
