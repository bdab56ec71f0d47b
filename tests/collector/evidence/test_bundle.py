"""Export then verify, and every way a bundle can be tampered with, named by the verifier."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.audit.model import AuditEntry
from collector.evidence.errors import BundleError, EvidenceError
from collector.evidence.verify import verify_bundle
from collector.storage.base import Store
from tests.collector.evidence import tamper, world

KEY = Ed25519PrivateKey.generate()


def _audit(store: Store) -> None:
    # One record before the period (the chain proof's anchor), three inside, one after.
    for at, action in [
        (-1, "user.add"),
        (1, "alert.acknowledge"),
        (2, "rules.reload"),
        (3, "system.approve"),
        (60, "user.disable"),
    ]:
        store.append_audit(
            AuditEntry(actor="admin", action=action, target="dvc", detail={"n": at}),
            at_ns=world.ns(world.START) + at * world.HOUR,
        )


@pytest.fixture
def bundle(store: Store, tmp_path: Path) -> Path:
    world.populate(store)
    _audit(store)
    return world.export(store, tmp_path, KEY).path


def test_export_then_verify_holds_on_each_backend(store: Store, tmp_path: Path) -> None:
    world.populate(store)
    _audit(store)
    store.triage_alert("al1", "acknowledge", actor="op1", at_ns=world.ns(world.START) + 7)
    result = world.export(store, tmp_path, KEY)
    report = verify_bundle(result.path, KEY.public_key())
    assert report.ok, report.problems
    assert report.files_checked == len(result.files) == 12
    members = tamper.read(result.path)
    stats = json.loads(members["event-statistics.json"])
    # a1's 25 and a2's 1 in the period; a2's older event and the stray agent's are not.
    assert stats["total_events"] == result.events == 26
    assert {g["agent_id"] for g in stats["gaps"]} == {"a1", "a2"}
    alerts = [json.loads(line) for line in members["alerts.jsonl"].splitlines()]
    assert [a["id"] for a in alerts] == ["al1"]
    assert [h["action"] for h in alerts[0]["triage_history"]] == ["acknowledge"]
    audit = json.loads(members["audit.json"])
    # Seq 6 (the triage) is dated in the period: seq 5, dated after it, is kept for the chain.
    assert [r["seq"] for r in audit["records"]] == [2, 3, 4, 5, 6]
    retention = json.loads(members["retention.json"])
    assert retention[1]["oldest_event"]["event_id"] == "old"
    inventory = json.loads(members["inventory.json"])
    assert inventory[0]["inventory"]["inventory"]["os_name"] == "Debian"
    # The export is itself audited, with the bundle's hash.
    last = store.last_audit_record()
    assert last is not None
    assert last.action == "evidence.export"
    assert last.detail["bundle_sha256"] == result.sha256


def _problems(path: Path) -> list[tuple[str, str]]:
    return [(p.kind, p.name) for p in verify_bundle(path, KEY.public_key()).problems]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_one_flipped_byte_names_the_modified_file(bundle: Path) -> None:
    def flip(m: tamper.Members) -> None:
        data = bytearray(m["findings.json"])
        data[10] ^= 0x01
        m["findings.json"] = bytes(data)

    tamper.rewrite(bundle, flip)
    assert _problems(bundle) == [("modified", "findings.json")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_removed_file_is_named(bundle: Path) -> None:
    tamper.rewrite(bundle, lambda m: m.pop("alerts.jsonl"))
    assert _problems(bundle) == [("removed", "alerts.jsonl")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_added_file_is_named(bundle: Path) -> None:
    tamper.rewrite(bundle, lambda m: m.update({"extra.json": b"{}"}))
    assert _problems(bundle) == [("added", "extra.json")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_manifest_signed_by_another_key_is_refused(bundle: Path) -> None:
    def forge(m: tamper.Members) -> None:
        m["system.json"] = b'{"forged": true}'
        tamper.resign(m, Ed25519PrivateKey.generate())

    tamper.rewrite(bundle, forge)
    report = verify_bundle(bundle, KEY.public_key())
    assert [(p.kind, p.name) for p in report.problems] == [("signature", "manifest.sig")]
    assert "another key" in report.problems[0].detail


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_tampered_audit_excerpt_breaks_the_chain_even_when_re_signed(bundle: Path) -> None:
    def edit(m: tamper.Members) -> None:
        audit = json.loads(m["audit.json"])
        audit["records"][1]["actor"] = "nobody"  # seq 3
        m["audit.json"] = json.dumps(audit).encode()
        tamper.resign(m, KEY)  # the signature holds: only the chain can tell

    tamper.rewrite(bundle, edit)
    report = verify_bundle(bundle, KEY.public_key())
    assert [(p.kind, p.name) for p in report.problems] == [("chain", "audit.json seq 3")]
    assert "modified" in report.problems[0].detail


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_dropped_audit_record_breaks_the_chain(bundle: Path) -> None:
    def drop(m: tamper.Members) -> None:
        audit = json.loads(m["audit.json"])
        del audit["records"][0]
        m["audit.json"] = json.dumps(audit).encode()
        tamper.resign(m, KEY)

    tamper.rewrite(bundle, drop)
    assert _problems(bundle) == [("chain", "audit.json seq 3")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_malformed_manifest_is_reported(bundle: Path) -> None:
    def garble(m: tamper.Members) -> None:
        m["manifest.json"] = b'{"format": "canhgac-evidence", "format_version": 1, "files": []}'
        m["manifest.sig"] = KEY.sign(m["manifest.json"])

    tamper.rewrite(bundle, garble)
    assert _problems(bundle) == [("manifest", "manifest.json")]


def _with_member(path: Path, info: tarfile.TarInfo, data: bytes = b"") -> None:
    members = tamper.read(path)
    tamper.write(path, members)
    with tarfile.open(path, "a") as tar:
        info.size = len(data) if info.isreg() else 0
        tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("../etc/cron.d/x", tarfile.REGTYPE),
        ("/etc/passwd", tarfile.REGTYPE),
        ("files/../../x", tarfile.REGTYPE),
        ("link.json", tarfile.SYMTYPE),
        ("hard.json", tarfile.LNKTYPE),
        ("dev.json", tarfile.CHRTYPE),
        ("sub", tarfile.DIRTYPE),
    ],
)
def test_unsafe_members_refuse_the_whole_bundle(bundle: Path, name: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/shadow"
    _with_member(bundle, info, b"x")
    with pytest.raises(BundleError, match=r"unsafe|regular file"):
        verify_bundle(bundle, KEY.public_key())


def test_a_file_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="not a readable bundle"):
        verify_bundle(path, KEY.public_key())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_raw_events_are_gzip_json_lines_of_the_period(store: Store, tmp_path: Path) -> None:
    world.populate(store)
    result = world.export(store, tmp_path, KEY, raw_events=True)
    assert verify_bundle(result.path, KEY.public_key()).ok
    lines = gzip.decompress(tamper.read(result.path)["events.jsonl.gz"]).splitlines()
    ids = {json.loads(line)["event"]["id"] for line in lines}
    assert len(lines) == 26
    assert "old" not in ids
    assert "s" not in ids


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_existing_output_is_kept_unless_forced(store: Store, tmp_path: Path) -> None:
    world.populate(store)
    (tmp_path / "b.tar").write_bytes(b"keep me")
    with pytest.raises(EvidenceError, match="--force"):
        world.export(store, tmp_path, KEY)
    assert (tmp_path / "b.tar").read_bytes() == b"keep me"
    world.export(store, tmp_path, KEY, force=True)
    assert verify_bundle(tmp_path / "b.tar", KEY.public_key()).ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
