"""This agent's enrolled identity on disk: its certificate and key, read, checked and replaced.

The pair is replaced (at enrollment and renewal) so that a crash at any point leaves either
the old pair or the new one usable: both new files are written beside the old ones first,
then the key and the certificate are renamed over the old ones, and `load()` finishes a
replacement a crash interrupted between the two renames.

The running agent reads its pair with Python's `ssl` module (already loaded for TLS), not with
`cryptography`: that library maps about 8 MB the agent would keep for its whole life, and it
is needed only where keys and certificate requests are made (enrollment and renewal, see
renewal.py for the child process that renews).
"""

from __future__ import annotations

import _ssl
import contextlib
import datetime as dt
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from canhgac.errors import TlsError

if TYPE_CHECKING:
    from agent.config import AgentConfig
# Renew when less than this share of the certificate's validity is left.
RENEW_WHEN_LEFT = 1 / 3


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ClientIdentity:
    """A certificate and its key (PEM), with what the certificate says."""

    agent_id: str
    cert_pem: bytes
    key_pem: bytes
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, location: str = "") -> ClientIdentity:
        """Parse and check that the key belongs to the certificate; TlsError otherwise.

        Uses `cryptography` (loaded here, on first use): for enrollment and renewal, which
        hold the pair in memory before it is on disk; the running agent uses `from_files`."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID

        where = location or None
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise TlsError(f"unreadable agent certificate or key: {exc}", location=where) from None
        if key.public_key() != cert.public_key():
            raise TlsError("the agent key does not belong to the agent certificate", location=where)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise TlsError("the agent certificate names no agent (no CN)", location=where)
        return cls(
            agent_id=str(names[0].value),
            cert_pem=cert_pem,
            key_pem=key_pem,
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

    @classmethod
    def from_files(cls, cert_file: Path, key_file: Path) -> ClientIdentity:
        """As `from_pem`, for a pair on disk, with the `ssl` module only (see the module
        docstring): OpenSSL checks that the key belongs to the certificate, and decodes it."""
        where = str(cert_file)
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        # CPython's certificate decoder (what getpeercert() returns, for a file); private
        # but present since 3.3. Where it is missing, the library does the work.
        decode = getattr(_ssl, "_test_decode_cert", None)
        if decode is None:
            return cls.from_pem(cert_pem, key_pem, location=where)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file)
            fields = decode(str(cert_file))
        except ssl.SSLError as exc:
            if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
                raise TlsError(
                    "the agent key does not belong to the agent certificate", location=where
                ) from None
            raise TlsError(f"unreadable agent certificate or key: {exc}", location=where) from None
        names = [v for rdn in fields.get("subject", ()) for k, v in rdn if k == "commonName"]
        if not names:
            raise TlsError("the agent certificate names no agent (no CN)", location=where)
        return cls(
            agent_id=str(names[0]),
            cert_pem=cert_pem,
            key_pem=key_pem,
            serial=format(int(fields["serialNumber"], 16), "x"),
            not_before=_cert_time(fields["notBefore"]),
            not_after=_cert_time(fields["notAfter"]),
        )

    def check_current(self, now: dt.datetime) -> None:
        """TlsError when the certificate is expired or not yet valid at `now`."""
        if now >= self.not_after:
            raise TlsError(
                f"agent certificate expired at {_when(self.not_after)}, re-enroll: "
                "canhgac-agent enroll --token TOKEN"
            )
        if now < self.not_before:
            raise TlsError(
                f"agent certificate is valid only from {_when(self.not_before)}: check this "
                "host's clock"
            )

    def renewal_due(self, now: dt.datetime) -> bool:
        left = self.not_after - now
        return left < (self.not_after - self.not_before) * RENEW_WHEN_LEFT


def _cert_time(text: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), dt.UTC)


def _write_new(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    # O_CREAT's mode only applies to a new file; a leftover one keeps its mode otherwise.
    os.chmod(tmp, mode)
    return tmp


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class IdentityFiles:
    """Where this agent's certificate and key live."""

    cert_file: Path
    key_file: Path

    @classmethod
    def for_config(cls, config: AgentConfig) -> IdentityFiles:
        return cls(config.cert_path(), config.key_path())

    def _pending(self) -> tuple[Path, Path]:
        return (
            self.cert_file.with_name(self.cert_file.name + ".new"),
            self.key_file.with_name(self.key_file.name + ".new"),
        )

    def exists(self) -> bool:
        return self.cert_file.exists() or self._pending()[0].exists()

    def write(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Replace the pair; the key is written 0600 and the old pair stays until the end."""
        for folder in {self.cert_file.parent, self.key_file.parent}:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        new_key = _write_new(self.key_file, key_pem, 0o600)
        new_cert = _write_new(self.cert_file, cert_pem, 0o644)
        new_key.replace(self.key_file)
        new_cert.replace(self.cert_file)
        for folder in {self.cert_file.parent, self.key_file.parent}:
            _sync_dir(folder)

    def _recover(self) -> None:
        """Finish or undo a replacement a crash interrupted (see the module docstring)."""
        new_cert, new_key = self._pending()
        if new_cert.exists() and not new_key.exists():
            # Both renames' first half happened: the key on disk is the new one.
            with contextlib.suppress(TlsError, OSError):
                ClientIdentity.from_files(new_cert, self.key_file)
                new_cert.replace(self.cert_file)
                return
        # Crashed before the first rename: the old pair is intact; drop the new files.
        for leftover in (new_cert, new_key):
            leftover.unlink(missing_ok=True)

    def load(self) -> ClientIdentity:
        """The identity on disk; TlsError saying what to do when it is missing or unusable."""
        try:
            self._recover()
            return ClientIdentity.from_files(self.cert_file, self.key_file)
        except FileNotFoundError as exc:
            raise TlsError(
                "this agent is not enrolled (no certificate or key): run "
                "`canhgac-agent enroll --token TOKEN` with a token from "
                "`canhgac-collector tokens create`",
                location=str(exc.filename),
            ) from None
        except OSError as exc:
            raise TlsError(
                f"cannot read the agent certificate or key: {exc.strerror}",
                location=str(exc.filename),
            ) from None
