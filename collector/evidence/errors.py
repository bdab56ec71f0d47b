"""The errors of evidence export and verification."""

from __future__ import annotations

from canhgac.errors import CanhGacError


class EvidenceError(CanhGacError):
    """An export cannot be made as asked: unknown system, bad period, output in the way."""


class BundleError(EvidenceError):
    """A file is not a bundle this program can read safely (not a tar, unsafe member names,
    links or devices, members over their size limit, duplicate names)."""
