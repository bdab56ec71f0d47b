"""The collector's CA and server certificate."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

from cryptography import x509

from collector.pki import ensure_pki


def test_first_start_creates_ca_and_server_cert(tmp_path: Path) -> None:
    creds = ensure_pki(tmp_path, ["localhost", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate(creds.ca_cert)
    cert = x509.load_pem_x509_certificate(creds.cert)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600


def test_restart_keeps_material_and_name_change_reissues(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, ["localhost"])
    assert ensure_pki(tmp_path, ["localhost"]) == first
    changed = ensure_pki(tmp_path, ["localhost", "collector.example"])
    assert changed.ca_cert == first.ca_cert
    assert changed.cert != first.cert


def test_expiring_server_cert_is_renewed(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    first = ensure_pki(tmp_path, ["localhost"], now=now)
    later = ensure_pki(tmp_path, ["localhost"], now=now + dt.timedelta(days=800))
    assert later.cert != first.cert
    assert later.ca_cert == first.ca_cert
