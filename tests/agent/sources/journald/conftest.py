"""The journald tests write real journal files (systemd-journal-remote) and read them back."""

from __future__ import annotations

import pytest

from tests.agent.sources.journald.journals import JOURNAL_REMOTE, JOURNALCTL
from tests.requirements import require


@pytest.fixture
def journal_tools() -> None:
    require(
        JOURNAL_REMOTE.exists() and JOURNALCTL is not None,
        "journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)",
    )
