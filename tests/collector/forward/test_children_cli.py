"""`canhgac-collector children issue | list | revoke` against a store and a CA on disk."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from collector.cli import main
from collector.enroll.issuer import serial_hex
from collector.forward.upstream_service import collector_from_pem
from collector.pki import ensure_pki
from collector.storage.sqlite import SqliteStore


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    """A parent collector in tls mode auto whose CA exists (as after its first start)."""
    path = tmp_path / "collector.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n")
    ensure_pki(tmp_path / "state" / "pki", ["localhost"])
    return str(path)


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state" / "collector.db")
    yield store
    store.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_issue_writes_the_certificate_and_key_and_records_it(
    cfg: str, tmp_path: Path, stored: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "handover"
    assert main(["children", "issue", "lang-son", "--out", str(out), "--config", cfg]) == 0
    printed = capsys.readouterr().out
    cert_pem, key_pem = (out / "lang-son.crt").read_bytes(), (out / "lang-son.key").read_bytes()
    assert (_mode(out / "lang-son.crt"), _mode(out / "lang-son.key")) == (0o644, 0o600)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key() == cert.public_key()
    assert collector_from_pem(cert_pem) == "lang-son"
    serial = serial_hex(cert.serial_number)
    # Serial, expiry and the CA to hand over are printed; the key never is.
    assert serial in printed
    assert str(tmp_path / "state" / "pki" / "ca.crt") in printed
    assert "expires" in printed
    assert b"PRIVATE KEY" not in printed.encode()
    assert key_pem.decode().splitlines()[1] not in printed
    (record,) = stored.list_child_certificates()
    assert (record.serial, record.name, record.revoked_ns) == (serial, "lang-son", 0)
    assert stored.child_certificate_state("lang-son", serial) == "valid"
    (audit,) = stored.audit_records(action_prefix="child.")
    assert (audit.action, audit.target, audit.detail["serial"]) == (
        "child.issue",
        "lang-son",
        serial,
    )
    assert audit.actor.startswith("cli:")


def test_the_key_is_created_private_and_nothing_is_overwritten(
    cfg: str,
    tmp_path: Path,
    stored: SqliteStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opened: dict[str, tuple[int, int]] = {}
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        opened[os.fspath(path)] = (flags, mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    out = tmp_path / "handover"
    old_umask = os.umask(0)  # a careless shell: the modes must not depend on it
    try:
        assert main(["children", "issue", "lang-son", "--out", str(out), "--config", cfg]) == 0
    finally:
        os.umask(old_umask)
    key_flags, key_mode = opened[str(out / "lang-son.key")]
    # Created with its final mode (never world-readable, even briefly) and never over a file.
    assert key_mode == 0o600
    assert key_flags & os.O_EXCL
    assert key_flags & os.O_CREAT
    assert (_mode(out / "lang-son.crt"), _mode(out / "lang-son.key")) == (0o644, 0o600)
    capsys.readouterr()

    before = (out / "lang-son.crt").read_bytes(), (out / "lang-son.key").read_bytes()
    assert main(["children", "issue", "lang-son", "--out", str(out), "--config", cfg]) == 1
    assert "will not overwrite" in capsys.readouterr().err
    assert ((out / "lang-son.crt").read_bytes(), (out / "lang-son.key").read_bytes()) == before
    # Even one of the two existing is enough to refuse, and nothing new is recorded.
    (out / "lang-son.crt").unlink()
    assert main(["children", "issue", "lang-son", "--out", str(out), "--config", cfg]) == 1
    assert str(out / "lang-son.key") in capsys.readouterr().err
    assert not (out / "lang-son.crt").exists()
    assert len(stored.list_child_certificates()) == 1


def test_list_shows_each_certificate_and_its_state(
    cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["children", "list", "--config", cfg]) == 0
    assert capsys.readouterr().out.strip() == "no child certificates"
    for name in ("lang-son", "cao-bang"):
        assert (
            main(["children", "issue", name, "--out", str(tmp_path / name), "--config", cfg]) == 0
        )
    assert main(["children", "revoke", "cao-bang", "--reason", "decommissioned", "-c", cfg]) == 0
    capsys.readouterr()

    assert main(["children", "list", "--config", cfg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert any("lang-son" in line and "valid" in line for line in lines)
    assert any(
        "cao-bang" in line and "revoked" in line and "decommissioned" in line for line in lines
    )
    assert main(["children", "list", "--json", "--config", cfg]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"]: (r["state"], r["revoke_reason"]) for r in rows} == {
        "lang-son": ("valid", ""),
        "cao-bang": ("revoked", "decommissioned"),
    }
    assert all(r["serial"] and r["expires"] for r in rows)


def test_revoke_refuses_the_child_and_is_audited(
    cfg: str, tmp_path: Path, stored: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for out in ("first", "second"):  # two certificates of one child
        assert main(["children", "issue", "lang-son", "--out", str(tmp_path / out), "-c", cfg]) == 0
    capsys.readouterr()
    assert main(["children", "revoke", "lang-son", "--config", cfg]) == 0
    assert "lang-son revoked (2 certificate(s))" in capsys.readouterr().out
    assert {c.revoke_reason for c in stored.list_child_certificates()} == {"child revoked"}
    audits = stored.audit_records(action_prefix="child.")
    assert [a.action for a in audits] == ["child.issue", "child.issue", "child.revoke"]
    assert audits[-1].detail == {"certificates": 2, "reason": "child revoked"}

    # Nothing left to revoke: exit 1, said plainly, and no audit record.
    assert main(["children", "revoke", "lang-son", "--config", cfg]) == 1
    assert "nothing to revoke" in capsys.readouterr().err
    assert main(["children", "revoke", "ghost", "--config", cfg]) == 1
    assert "'ghost' has no unrevoked certificate" in capsys.readouterr().err
    assert len(stored.audit_records(action_prefix="child.")) == 3


def test_issue_refuses_a_bad_name_and_a_collector_without_tls(
    cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "handover")
    assert main(["children", "issue", "../etc", "--out", out, "--config", cfg]) == 2
    assert "NAME: must be 1-128 characters" in capsys.readouterr().err
    insecure = tmp_path / "insecure.yaml"
    insecure.write_text(f"state_dir: {tmp_path / 'state'}\ntls: {{mode: insecure_dev}}\n")
    assert main(["children", "issue", "lang-son", "--out", out, "--config", str(insecure)]) == 2
    assert "insecure_dev" in capsys.readouterr().err
    assert not (tmp_path / "handover").exists()
