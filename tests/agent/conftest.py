"""Fixtures shared by the agent's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collector.app import CollectorApp
from tests.collector.enroll.helpers import running_collector


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CollectorApp]:
    """A real collector (ingest and enrollment on loopback) for an agent to talk to."""
    async with running_collector(tmp_path / "c") as running:
        yield running
