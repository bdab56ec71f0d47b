"""Certificates for the demo receiver and its sender: one CA, a server certificate for the
receiver and a client certificate for the collector. For demos and tests only; a real
deployment uses the certificates the national centre issues or accepts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from collector import pki
from collector.pki import _write_private, create_ca, issue_server_cert

CLIENT_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class ReceiverPki:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def issue_client_cert(
    ca_cert_pem: bytes, ca_key_pem: bytes, common_name: str, now: dt.datetime
) -> tuple[bytes, bytes]:
    """A client (TLS clientAuth) certificate signed by the CA: (certificate PEM, key PEM)."""
    return pki.issue_client_cert(ca_cert_pem, ca_key_pem, common_name, now, CLIENT_VALIDITY)


def make_receiver_pki(directory: Path, server_names: list[str], client: str) -> ReceiverPki:
    """Write a CA, the receiver's server certificate and the sender's client certificate
    (keys mode 0600) under `directory`; both sides trust the one CA."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_cert, ca_key = create_ca("Canh Gac demo receiver CA", now)
    server_cert, server_key = issue_server_cert(ca_cert, ca_key, server_names, now)
    client_cert, client_key = issue_client_cert(ca_cert, ca_key, client, now)
    pki = ReceiverPki(
        ca_file=directory / "ca.pem",
        server_cert=directory / "receiver.pem",
        server_key=directory / "receiver.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    pki.ca_file.write_bytes(ca_cert)
    pki.server_cert.write_bytes(server_cert)
    _write_private(pki.server_key, server_key)
    pki.client_cert.write_bytes(client_cert)
    _write_private(pki.client_key, client_key)
    return pki
