"""Real components a test needs: skipped where missing on a developer's machine, a failure in CI.

scripts/install-system-deps.sh installs every program the suite uses and CI runs as root, so
under CI=true a missing component is a broken set-up, never a reason to skip.
"""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str) -> None:
    """Go on when `available`; otherwise skip (fail when CI=true) naming what is missing."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: missing in CI (scripts/install-system-deps.sh installs it)")
    pytest.skip(f"needs {what}")
