"""Review findings on `evidence verify`: members hidden from Python's tar reader but seen by
`tar` itself must not pass unnoticed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.evidence.errors import BundleError
from collector.evidence.verify import verify_bundle
from collector.storage.base import Store
from tests.collector.evidence import world

KEY = Ed25519PrivateKey.generate()
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def bundle(store: Store, tmp_path: Path) -> Path:
    world.populate(store)
    return world.export(store, tmp_path, KEY).path


def _members_end(path: Path) -> int:
    with tarfile.open(path, mode="r:") as tar:
        tar.getmembers()
        return tar.offset  # where the end-of-archive blocks start


def _extra_member() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("extra.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return out.getvalue()


@pytest.mark.parametrize(
    "separator",
    [b"\xff" * 512, b"\0" * 512],
    ids=["after-a-damaged-header", "after-a-lone-zero-block"],
)
def test_a_member_appended_past_where_python_stops_reading_is_refused(
    bundle: Path, separator: bytes
) -> None:
    # GNU tar skips a damaged header (or a lone zero block with -i) and extracts what follows.
    assert verify_bundle(bundle, KEY.public_key()).ok
    data = bundle.read_bytes()[: _members_end(bundle)]
    bundle.write_bytes(data + separator + _extra_member())
    with pytest.raises(BundleError, match="after the end of the archive"):
        verify_bundle(bundle, KEY.public_key())


def test_zero_padding_after_the_end_is_accepted(bundle: Path) -> None:
    with bundle.open("ab") as fh:
        fh.write(b"\0" * 10240)
    assert verify_bundle(bundle, KEY.public_key()).ok
