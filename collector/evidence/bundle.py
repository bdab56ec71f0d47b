"""The bundle file: a plain (uncompressed) POSIX tar holding `manifest.json`, `manifest.sig`
and the evidence files.

Why tar rather than zip: a tar is a plain sequence of members, so it is written and verified
in one streaming pass (the raw events can be gigabytes) and needs no central directory that
could disagree with the members' own headers; every assessor's system (and Windows 10+) reads
it with the standard `tar`; the members are not compressed, so the hashes in the manifest are
of bytes anyone can extract and hash again with `sha256sum`. Large members are compressed on
their own (`events.jsonl.gz`).

`manifest.json` lists every other member with its SHA-256 and size; `manifest.sig` is the
Ed25519 signature (64 raw bytes) over the exact bytes of `manifest.json`. Members are written
with fixed owner, group and mode, so nothing about the exporting machine leaks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.evidence.errors import EvidenceError

FORMAT = "canhgac-evidence"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# Member names: relative, lower-case words separated by single slashes; no "..", no "/..".
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}(/[a-z0-9][a-z0-9_.-]{0,99}){0,3}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


def safe_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and ".." not in name.split("/")


def dumps(data: Any) -> bytes:
    """The JSON of every bundle file: sorted keys, UTF-8, indented (assessors read it)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1, default=str).encode()


class _HashingWriter:
    """A binary file that hashes what is written to it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


class BundleWriter:
    """Collects the evidence files in a work directory, then writes the signed tar."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.files: dict[str, FileEntry] = {}

    def _path(self, name: str) -> Path:
        if not safe_name(name) or name in (MANIFEST, SIGNATURE) or name in self.files:
            raise ValueError(f"bad or repeated bundle member name {name!r}")
        return self.workdir / name.replace("/", "__")

    def add_bytes(self, name: str, data: bytes) -> None:
        with self.open(name) as fh:
            fh.write(data)

    def add_json(self, name: str, data: Any) -> None:
        self.add_bytes(name, dumps(data))

    @contextmanager
    def open(self, name: str) -> Iterator[_HashingWriter]:
        """A file to stream one member into; it is hashed as it is written."""
        path = self._path(name)
        with path.open("xb") as raw:
            writer = _HashingWriter(raw)
            yield writer
        self.files[name] = FileEntry(writer.digest.hexdigest(), writer.size)

    def manifest(self, fields: Mapping[str, Any]) -> bytes:
        files = {n: {"sha256": e.sha256, "size": e.size} for n, e in sorted(self.files.items())}
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **fields, "files": files}
        return dumps(body)

    def write(
        self,
        out: Path,
        fields: Mapping[str, Any],
        key: Ed25519PrivateKey,
        *,
        mtime: int,
        force: bool = False,
    ) -> str:
        """Write the tar to `out` (never over an existing file unless `force`); return the
        SHA-256 of the whole bundle."""
        manifest = self.manifest(fields)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
        try:
            with tmp.open("xb") as raw:
                with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    _add(tar, MANIFEST, io.BytesIO(manifest), len(manifest), mtime)
                    sig = key.sign(manifest)
                    _add(tar, SIGNATURE, io.BytesIO(sig), len(sig), mtime)
                    for name, entry in sorted(self.files.items()):
                        with (self.workdir / name.replace("/", "__")).open("rb") as fh:
                            _add(tar, name, fh, entry.size, mtime)
                raw.flush()
                os.fsync(raw.fileno())
            digest = _sha256(tmp)
            _place(tmp, out, force)
        finally:
            tmp.unlink(missing_ok=True)
        return digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _add(tar: tarfile.TarFile, name: str, fh: IO[bytes], size: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, fh)


def _place(tmp: Path, out: Path, force: bool) -> None:
    if force:
        tmp.replace(out)
        return
    try:
        os.link(tmp, out)  # fails if `out` exists: no check-then-write race
    except FileExistsError:
        raise EvidenceError("exists; pass --force to replace it", location=str(out)) from None
    except OSError as exc:
        raise EvidenceError(f"cannot write the bundle: {exc}", location=str(out)) from None
