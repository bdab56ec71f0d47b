"""Says what was wrong when a TLS connection to the collector fails.

gRPC reports most TLS failures as UNAVAILABLE with a transport-level text ("Socket closed"
when the collector refuses our certificate). To tell the operator what to fix, the agent
repeats the handshake with Python's ssl module, which reports the verification error code of
the collector's certificate. Our own certificate is judged by the collector after our side of
the TLS 1.3 handshake is done: gRPC's server then simply closes the connection (or sends an
alert, which other servers do), where an accepting one sends its HTTP/2 settings at once. The
probe uses the same CA file, expected name and client certificate as the real connection, and
verifies just as strictly; it only reads, never sends application data.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from canhgac.netaddr import parse_host_port

PROBE_TIMEOUT_S = 5.0
# After the handshake the collector either sends its HTTP/2 settings or an alert about our
# certificate (TLS 1.3 judges the client after the client's handshake is done).
ALERT_WAIT_S = 1.0

# OpenSSL verification codes of the collector's certificate.
_NAME_MISMATCH = {62, 64}  # host name, IP address
_EXPIRED = 10
_NOT_YET_VALID = 9
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21, 27}


@dataclass(frozen=True)
class TlsTarget:
    """What the real connection uses: address, CA file, expected name, client certificate."""

    address: str
    ca_file: Path
    server_name: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def _server_verdict(exc: ssl.SSLCertVerificationError, target: TlsTarget, name: str) -> str:
    code = exc.verify_code
    if code in _NAME_MISMATCH:
        return (
            f"the collector's certificate does not name {name} (set collector.server_name, or "
            "add the name to the collector's tls.server_names)"
        )
    if code in _UNKNOWN_ISSUER:
        return f"the collector's certificate is not signed by the configured CA {target.ca_file}"
    if code == _EXPIRED:
        return "the collector's certificate has expired"
    if code == _NOT_YET_VALID:
        return "the collector's certificate is not valid yet: check the clocks"
    return f"the collector's certificate does not verify against {target.ca_file}: " + str(
        exc.verify_message
    )


def _certificate_required(target: TlsTarget) -> str:
    return (
        f"the collector requires a client certificate on {target.address} (is this the "
        "ingest port rather than the enrollment port?)"
    )


_NOT_OUR_CA = (
    "the collector refused this agent's certificate: it is not signed by the collector's CA "
    "(enrolled with another collector?); re-enroll"
)


def _signed_by(cert_file: Path, ca_file: Path) -> bool:
    """Whether a CA in `ca_file` issued the certificate (both read as PEM; False if unreadable).

    Only asked once the collector has refused our certificate, so `cryptography` is loaded
    here rather than in every agent (see identity.py)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        cas = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError):
        return False
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _closed_verdict(target: TlsTarget) -> str:
    """The collector hung up right after the handshake: it refused our certificate."""
    if target.cert_file is None:
        return _certificate_required(target)
    # In the usual setup one CA signs both the collector's and the agents' certificates, so a
    # certificate that CA did not sign is the likely cause; otherwise, say what else it can be.
    if not _signed_by(target.cert_file, target.ca_file):
        return _NOT_OUR_CA
    return (
        "the collector refused this agent's certificate (expired for the collector's clock, or "
        "not issued by it); re-enroll"
    )


def _alert_verdict(exc: ssl.SSLError, target: TlsTarget) -> str | None:
    reason = str(exc.reason or "")
    if "CERTIFICATE_REQUIRED" in reason:
        return _certificate_required(target)
    if "UNKNOWN_CA" in reason:
        return _NOT_OUR_CA
    if "CERTIFICATE_EXPIRED" in reason:
        return "the collector refused this agent's certificate as expired; re-enroll"
    if "CERTIFICATE_REVOKED" in reason:
        return "the collector refused this agent's certificate as revoked"
    if "CERTIFICATE" in reason:
        return f"the collector refused this agent's certificate ({reason})"
    return None


def probe(target: TlsTarget) -> str | None:
    """Why a TLS connection to `target` fails, in words; None when it succeeds (or the cause
    is not a TLS one this probe can name). Blocking: run it in a thread."""
    host, port = parse_host_port(target.address)
    name = target.server_name or host
    try:
        ctx = ssl.create_default_context(cafile=str(target.ca_file))
        ctx.set_alpn_protocols(["h2"])
        if target.cert_file is not None:
            ctx.load_cert_chain(target.cert_file, target.key_file)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot load the TLS files: {exc}"
    try:
        with (
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as raw,
            ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            tls.settimeout(ALERT_WAIT_S)
            data = b"(no answer yet: the collector waits for our HTTP/2 preface)"
            with contextlib.suppress(TimeoutError):
                data = tls.recv(1)
            if not data:
                return _closed_verdict(target)
    except ssl.SSLCertVerificationError as exc:
        return _server_verdict(exc, target, name)
    except ssl.SSLError as exc:
        return _alert_verdict(exc, target)
    except OSError as exc:
        return f"cannot reach the collector at {target.address}: {exc.strerror or exc}"
    return None
