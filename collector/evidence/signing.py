"""The collector's Ed25519 evidence-signing key.

Generated on first use as `state_dir/evidence-signing.key` (PKCS#8 PEM, mode 0600, written like
the other private keys in collector/pki.py). Only its public half ever leaves the collector:
assessors verify bundles with it. A separate key from the TLS CA, so rotating one never
invalidates the other's signatures.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from canhgac.errors import TlsError
from collector.pki import _write_private

KEY_FILE = "evidence-signing.key"


def load_or_create_key(state_dir: Path) -> Ed25519PrivateKey:
    """The signing key in `state_dir`, generated (0600) when there is none yet."""
    path = state_dir / KEY_FILE
    try:
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(path, pem)
            return key
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        message = f"cannot read or create the signing key: {exc}"
        raise TlsError(message, location=str(path)) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise TlsError("not an Ed25519 private key", location=str(path))
    return loaded


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: what the manifest names the signer by."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(raw)
    return digest.finalize().hex()


def load_public_key(pem: bytes, *, location: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise TlsError("not a PEM public key", location=location) from None
    if not isinstance(key, Ed25519PublicKey):
        raise TlsError("not an Ed25519 public key", location=location)
    return key


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
