"""Rewrite a bundle the way an attacker would: members changed, removed, added, re-signed.
Test-only: reads every member into memory."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

Members = dict[str, bytes]


def read(path: Path) -> Members:
    members: Members = {}
    with tarfile.open(path) as tar:
        for m in tar:
            fh = tar.extractfile(m)
            assert fh is not None, m.name
            members[m.name] = fh.read()
    return members


def write(path: Path, members: Members) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def rewrite(path: Path, change: Callable[[Members], object]) -> None:
    members = read(path)
    change(members)
    write(path, members)


def resign(members: Members, key: Ed25519PrivateKey, *, update_hashes: bool = True) -> None:
    """Recompute the manifest's hashes of the current members and sign it with `key`."""
    manifest = json.loads(members["manifest.json"])
    if update_hashes:
        for name in manifest["files"]:
            if name in members:
                data = members[name]
                manifest["files"][name] = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
    members["manifest.json"] = json.dumps(manifest).encode()
    members["manifest.sig"] = key.sign(members["manifest.json"])
