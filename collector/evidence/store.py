"""EvidenceReads: the few event queries an evidence export needs, written once for both
backends (portable SQL, `?` placeholders; see collector/storage/enrollment_sql.Sql).

`period_events` pages by row id over the primary key (no index on time alone exists: see
0001_initial.sql), so a whole period is one linear pass whatever the page size. The other
queries follow the (agent_id, time_ns) index and read one agent at a time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from collector.storage.enrollment_sql import Sql


@dataclass(frozen=True)
class PeriodEventRow:
    """One stored event, as the statistics need it (`data` is the serialized Event)."""

    row_id: int
    agent_id: str
    time_ns: int
    category: str
    data: bytes


@dataclass(frozen=True)
class OldestEvent:
    """The oldest event the store still holds for one agent: the proof of retention."""

    agent_id: str
    row_id: int
    event_id: str
    time_ns: int
    received_ns: int


class EvidenceReads(Protocol):
    """Event reads for evidence bundles (Store extends it)."""

    def period_events(
        self, *, from_ns: int, before_ns: int, after_row: int = 0, limit: int = 5000
    ) -> list[PeriodEventRow]:
        """Events with from_ns <= time_ns < before_ns and row id > after_row, in row-id
        order, at most `limit`. Every agent's: the caller keeps those it wants."""
        ...

    def agent_event_times(
        self, agent_id: str, *, after_ns: int, before_ns: int, limit: int = 10_000
    ) -> list[int]:
        """Distinct event times of one agent with after_ns < time_ns < before_ns, ascending,
        at most `limit`: pass the last one as `after_ns` for the next page."""
        ...

    def oldest_event(self, agent_id: str) -> OldestEvent | None:
        """The agent's stored event with the smallest time (then row id), or None."""
        ...

    def latest_agent_events(
        self, agent_id: str, category: str, *, before_ns: int, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        """(time_ns, data) of the agent's events of `category` with time_ns < before_ns,
        newest first, at most `limit`."""
        ...


def check_limit(limit: int) -> None:
    # As collector/storage/rows.check_limit, which this module cannot import: storage/base.py
    # imports this module, and rows.py imports base.py.
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


class EvidenceReadsMixin:
    """EvidenceReads for a backend that provides `_sql_read`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def period_events(
        self, *, from_ns: int, before_ns: int, after_row: int = 0, limit: int = 5000
    ) -> list[PeriodEventRow]:
        check_limit(limit)
        with self._sql_read("period_events") as sql:
            rows = sql.all(
                "SELECT row_id, agent_id, time_ns, category, data FROM events "
                "WHERE row_id > ? AND time_ns >= ? AND time_ns < ? ORDER BY row_id LIMIT ?",
                (after_row, from_ns, before_ns, limit),
            )
        return [PeriodEventRow(int(r), str(a), int(t), str(c), bytes(d)) for r, a, t, c, d in rows]

    def agent_event_times(
        self, agent_id: str, *, after_ns: int, before_ns: int, limit: int = 10_000
    ) -> list[int]:
        check_limit(limit)
        with self._sql_read("agent_event_times") as sql:
            rows = sql.all(
                "SELECT DISTINCT time_ns FROM events WHERE agent_id = ? AND time_ns > ? "
                "AND time_ns < ? ORDER BY time_ns LIMIT ?",
                (agent_id, after_ns, before_ns, limit),
            )
        return [int(r[0]) for r in rows]

    def oldest_event(self, agent_id: str) -> OldestEvent | None:
        with self._sql_read("oldest_event") as sql:
            row = sql.one(
                "SELECT row_id, event_id, time_ns, received_ns FROM events WHERE agent_id = ? "
                "ORDER BY time_ns, row_id LIMIT 1",
                (agent_id,),
            )
        if row is None:
            return None
        return OldestEvent(agent_id, int(row[0]), str(row[1]), int(row[2]), int(row[3]))

    def latest_agent_events(
        self, agent_id: str, category: str, *, before_ns: int, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        check_limit(limit)
        with self._sql_read("latest_agent_events") as sql:
            rows = sql.all(
                "SELECT time_ns, data FROM events WHERE agent_id = ? AND time_ns < ? "
                "AND category = ? ORDER BY time_ns DESC, row_id DESC LIMIT ?",
                (agent_id, before_ns, category, limit),
            )
        return [(int(t), bytes(d)) for t, d in rows]
