"""Verify a bundle offline: nothing but the bundle and the collector's public key.

The bundle is read as a stream and never extracted: members are hashed as they pass, and only
the manifest, the signature and the audit excerpt are kept in memory, each under a size
limit. A member with an unsafe name (absolute, `..`, odd characters), a link, a device or a
directory makes the file refused as a whole (BundleError); everything else is reported as a
list of problems, each naming the file or record concerned.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.audit.model import AuditRecord, verify_chain
from collector.evidence.bundle import FORMAT, FORMAT_VERSION, MANIFEST, SIGNATURE, safe_name
from collector.evidence.errors import BundleError
from collector.evidence.signing import fingerprint, signature_valid

ProblemKind = Literal["signature", "manifest", "modified", "removed", "added", "chain"]
MAX_MEMBERS = 10_000
# Members read into memory; any other member is only hashed, chunk by chunk.
IN_MEMORY_LIMITS = {MANIFEST: 16 << 20, SIGNATURE: 1024, "audit.json": 512 << 20}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}: {self.detail}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Seen:
    digests: dict[str, tuple[str, int]] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)


def verify_bundle(path: Path, key: Ed25519PublicKey) -> VerifyReport:
    seen = _read(path)
    report = VerifyReport()
    manifest_bytes = seen.kept.get(MANIFEST)
    signature = seen.kept.get(SIGNATURE)
    if manifest_bytes is None:
        report.problems.append(Problem("manifest", MANIFEST, "missing"))
        return report
    if signature is None:
        report.problems.append(Problem("signature", SIGNATURE, "missing"))
    elif not signature_valid(key, signature, manifest_bytes):
        report.problems.append(Problem("signature", SIGNATURE, _bad_signature(manifest_bytes, key)))
    files = _files(manifest_bytes, report)
    if files is None:
        return report
    for name, (sha, size) in sorted(files.items()):
        got = seen.digests.get(name)
        if got is None:
            report.problems.append(Problem("removed", name, "listed in the manifest, absent"))
        elif got != (sha, size):
            detail = f"SHA-256 {got[0]} (size {got[1]}), manifest says {sha} (size {size})"
            report.problems.append(Problem("modified", name, detail))
        else:
            report.files_checked += 1
    for name in sorted(set(seen.digests) - set(files) - {MANIFEST, SIGNATURE}):
        report.problems.append(Problem("added", name, "not listed in the manifest"))
    if "audit.json" in seen.kept:
        _check_audit(seen.kept["audit.json"], report)
    return report


def _bad_signature(manifest_bytes: bytes, key: Ed25519PublicKey) -> str:
    detail = "does not verify with this public key"
    try:
        claimed = json.loads(manifest_bytes).get("signer_sha256")
    except (ValueError, AttributeError):
        claimed = None
    if isinstance(claimed, str) and claimed != fingerprint(key):
        return f"{detail}: the manifest names another signing key ({claimed[:16]}...)"
    return f"{detail}: signed by another key, or the manifest was changed"


def _read(path: Path) -> _Seen:
    seen = _Seen()
    try:
        with tarfile.open(path, mode="r:") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise BundleError(f"more than {MAX_MEMBERS} members", location=str(path))
                _check_member(member, path)
                if member.name in seen.digests:
                    raise BundleError("member name repeated", location=f"{path}:{member.name}")
                fh = tar.extractfile(member)
                if fh is None:
                    raise BundleError("unreadable member", location=f"{path}:{member.name}")
                _consume(member, fh, seen, path)
            _check_tail(tar, path)
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"not a readable bundle (tar): {exc}", location=str(path)) from None
    except OSError as exc:
        raise BundleError(f"cannot read: {exc}", location=str(path)) from None
    return seen


def _check_member(member: tarfile.TarInfo, path: Path) -> None:
    where = f"{path}:{member.name!r}"
    name = member.name
    if name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise BundleError("unsafe member name (absolute or with '..')", location=where)
    if not member.isreg():
        raise BundleError("not a regular file (a link, device or directory)", location=where)
    if not safe_name(name) and name not in (MANIFEST, SIGNATURE):
        raise BundleError("unexpected characters in a member name", location=where)


def _check_tail(tar: tarfile.TarFile, path: Path) -> None:
    """Only zero blocks may follow the last member. Python's reader stops at the first
    damaged header or zero block, while `tar` skips over it and extracts what follows: a
    member hidden there would reach the assessor without being verified."""
    fh = tar.fileobj
    if fh is None:
        return
    fh.seek(tar.offset)
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        if chunk.count(0) != len(chunk):
            raise BundleError("data after the end of the archive", location=str(path))


def _consume(member: tarfile.TarInfo, fh: IO[bytes], seen: _Seen, path: Path) -> None:
    limit = IN_MEMORY_LIMITS.get(member.name)
    if limit is not None and member.size > limit:
        raise BundleError(f"over its size limit of {limit} bytes", location=f"{path}:{member.name}")
    digest = hashlib.sha256()
    kept = bytearray()
    size = 0
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        if limit is not None:
            kept += chunk
    seen.digests[member.name] = (digest.hexdigest(), size)
    if limit is not None:
        seen.kept[member.name] = bytes(kept)


def _files(manifest_bytes: bytes, report: VerifyReport) -> dict[str, tuple[str, int]] | None:
    def bad(detail: str) -> None:
        report.problems.append(Problem("manifest", MANIFEST, detail))

    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        bad(f"not JSON: {exc}")
        return None
    if not isinstance(manifest, dict):
        bad("not a JSON object")
        return None
    report.manifest = manifest
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        bad(f"not a {FORMAT} version {FORMAT_VERSION} manifest")
        return None
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        bad("'files' is not an object")
        return None
    files: dict[str, tuple[str, int]] = {}
    for name, entry in listed.items():
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not safe_name(name) or name in (MANIFEST, SIGNATURE):
            bad(f"unsafe or reserved file name {name!r}")
            return None
        if not isinstance(sha, str) or not _HEX64.match(sha) or type(size) is not int:
            bad(f"entry of {name!r} needs a sha256 (64 hex) and an integer size")
            return None
        files[name] = (sha, size)
    return files


def _check_audit(data: bytes, report: VerifyReport) -> None:
    try:
        excerpt = json.loads(data)
        records = [AuditRecord(**r) for r in excerpt["records"]]
        check = verify_chain(
            records, prev_hash=str(excerpt["prev_hash"]), first_seq=int(excerpt["first_seq"])
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        report.problems.append(Problem("chain", "audit.json", f"unreadable excerpt: {exc}"))
        return
    if not check.ok:
        detail = f"chain broken at record {check.broken_seq}: {check.reason}"
        report.problems.append(Problem("chain", f"audit.json seq {check.broken_seq}", detail))
