"""AsyncSpool, the loop's face of the spool: an idle shipper's asks cost no SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.spool import SqliteSpool
from agent.spooling import AsyncSpool
from tests.agent.test_spool import event, ids


@pytest.fixture
async def spooled(tmp_path: Path) -> AsyncIterator[tuple[AsyncSpool, list[str]]]:
    """An AsyncSpool on a real spool file, and the SQL statements its connection runs."""
    spool = SqliteSpool(tmp_path / "spool.db", max_bytes=1 << 20)
    statements: list[str] = []
    spool._conn.set_trace_callback(statements.append)
    wrapped = AsyncSpool(spool, batch_max_events=10, batch_max_delay_ms=0)
    try:
        yield wrapped, statements
    finally:
        spool.close()


async def test_an_idle_spool_is_not_queried_again_until_written(
    spooled: tuple[AsyncSpool, list[str]],
) -> None:
    spool, statements = spooled
    await spool.emit([event(1), event(2)])
    first = await spool.batch_after(0, 100, 1 << 20)
    assert ids(first) == [1, 2]
    assert first is not None
    assert await spool.batch_after(first.seq, 100, 1 << 20) is None  # found empty: one look
    statements.clear()
    for _ in range(5):
        assert await spool.batch_after(first.seq, 100, 1 << 20) is None
    assert statements == []
    # What is written afterwards is found at the next ask.
    await spool.emit([event(3)])
    second = await spool.batch_after(first.seq, 100, 1 << 20)
    assert ids(second) == [3]
    assert second is not None
    assert await spool.batch_after(second.seq, 100, 1 << 20) is None


async def test_an_ack_or_another_position_looks_again(
    spooled: tuple[AsyncSpool, list[str]],
) -> None:
    spool, statements = spooled
    await spool.emit([event(1)])
    batch = await spool.batch_after(0, 100, 1 << 20)
    assert batch is not None
    assert await spool.batch_after(batch.seq, 100, 1 << 20) is None
    # After a reconnect the shipper starts again from the collector's last stored seq: the
    # assigned batch after it is sent again.
    statements.clear()
    again = await spool.batch_after(0, 100, 1 << 20)
    assert statements
    assert again is not None
    assert ids(again) == [1]
    await spool.ack(batch.seq)
    statements.clear()
    assert await spool.batch_after(batch.seq, 100, 1 << 20) is None
    assert statements
