"""Child collectors' certificates, issued and recorded by the parent (collector tiers).

A parent collector accepts `UpstreamService.Forward` only from a certificate its own registry
issued and has not revoked (`upstream_service.UpstreamServicer`). `issue_child` is therefore
the one way to make a child certificate: it signs with this collector's CA and records the
serial in the store (table child_certificates, an allow-list like agent_certificates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from canhgac.errors import TlsError
from collector.config import CollectorConfig
from collector.enroll.issuer import serial_hex
from collector.forward.upstream_service import NAME_RE, issue_collector_certificate
from collector.storage.enrollment import ChildCertificate, EnrollmentStore


@dataclass(frozen=True)
class CaFiles:
    """Where this collector's CA is: its certificate (handed to children) and its key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class IssuedChild:
    """A child certificate just issued: the PEMs to hand over and the record stored."""

    cert_pem: bytes
    key_pem: bytes
    record: ChildCertificate


def ca_files(config: CollectorConfig) -> CaFiles:
    """The CA that verifies the ingest port's clients: state_dir/pki in tls mode auto (created
    at the collector's first start), tls.ca_file and tls.ca_key_file in mode files. The same
    choice as the agents' issuer (collector.enroll.wiring.load_issuer)."""
    tls = config.tls
    if tls.mode == "files":
        assert tls.ca_file is not None  # required by the model in mode files
        assert tls.ca_key_file is not None
        return CaFiles(tls.ca_file, tls.ca_key_file)
    if tls.mode == "insecure_dev":
        raise TlsError(
            "this collector runs without TLS (tls.mode insecure_dev): it has no CA to issue "
            "child certificates with, and takes a batch's origin on trust"
        )
    pki = config.state_dir / "pki"
    return CaFiles(pki / "ca.crt", pki / "ca.key")


def _ns(when: dt.datetime) -> int:
    return int(when.timestamp() * 10**9)


def issue_child(
    store: EnrollmentStore, ca_cert_pem: bytes, ca_key_pem: bytes, name: str, now: dt.datetime
) -> IssuedChild:
    """Sign a client certificate for child collector `name` and record it as valid.

    ValueError when `name` does not match NAME_RE (nothing is recorded). The record is written
    before the caller hands anything over, so a certificate that exists is on record (and can
    be revoked); a record whose files were lost is harmless and can be revoked too.
    """
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a collector name (letters, digits, '.', '_', '-')")
    cert_pem, key_pem = issue_collector_certificate(ca_cert_pem, ca_key_pem, name, now)
    cert = x509.load_pem_x509_certificate(cert_pem)
    record = ChildCertificate(
        serial=serial_hex(cert.serial_number),
        name=name,
        not_before_ns=_ns(cert.not_valid_before_utc),
        not_after_ns=_ns(cert.not_valid_after_utc),
        issued_ns=_ns(now),
    )
    store.record_child_certificate(record)
    return IssuedChild(cert_pem, key_pem, record)
