"""The Store's read queries, written once for both backends (portable SQL, `?` placeholders).

A backend mixes `SharedReadsMixin` in and provides `_sql_read` (see enrollment_sql.Sql); only
what really differs between SQLite and PostgreSQL (writing batches, `IN` lists, NUL handling)
stays in the backend modules.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from collector.storage.base import AgentRecord, StoredAlert, StoredEvent
from collector.storage.enrollment_sql import Sql
from collector.storage.rows import agent_record, check_limit, stored_alert, stored_event

_EVENT_COLUMNS = "SELECT row_id, seq, received_ns, data FROM events"
ALERT_COLUMNS = "SELECT row_id, status, data, assignee, updated_ns FROM alerts"
_ALERT_COLUMNS = ALERT_COLUMNS
_AGENT_COLUMNS = (
    "SELECT agent_id, hostname, version, first_seen_ns, last_seen_ns, last_seq, peer, status, "
    "enrollment_status, system_id, cert_serial, cert_not_after_ns, enrolled_ns, revoked_ns "
    "FROM agents"
)


class SharedReadsMixin:
    """Store reads for a backend that provides `_sql_read`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def last_seq(self, agent_id: str) -> int:
        with self._sql_read("last_seq") as sql:
            row = sql.one(
                "SELECT COALESCE(MAX(seq), 0) FROM batches WHERE agent_id = ?", [agent_id]
            )
        return int(row[0]) if row else 0

    def count_events(self, *, agent_id: str | None = None) -> int:
        with self._sql_read("count_events") as sql:
            if agent_id is None:
                row = sql.one("SELECT COUNT(*) FROM events")
            else:
                row = sql.one("SELECT COUNT(*) FROM events WHERE agent_id = ?", [agent_id])
        return int(row[0]) if row else 0

    def events(
        self, *, after_row: int = 0, limit: int = 1000, agent_id: str | None = None
    ) -> list[StoredEvent]:
        check_limit(limit)
        with self._sql_read("events") as sql:
            if agent_id is None:
                rows = sql.all(
                    f"{_EVENT_COLUMNS} WHERE row_id > ? ORDER BY row_id LIMIT ?", [after_row, limit]
                )
            else:
                rows = sql.all(
                    f"{_EVENT_COLUMNS} WHERE row_id > ? AND agent_id = ? ORDER BY row_id LIMIT ?",
                    [after_row, agent_id, limit],
                )
        return [stored_event(row) for row in rows]

    def get_agent(self, agent_id: str) -> AgentRecord | None:
        with self._sql_read("get_agent") as sql:
            row = sql.one(f"{_AGENT_COLUMNS} WHERE agent_id = ?", [agent_id])
        return None if row is None else agent_record(row)

    def list_agents(self) -> list[AgentRecord]:
        with self._sql_read("list_agents") as sql:
            rows = sql.all(f"{_AGENT_COLUMNS} ORDER BY agent_id")
        return [agent_record(row) for row in rows]

    def alerts(self, *, after_row: int = 0, limit: int = 100) -> list[StoredAlert]:
        check_limit(limit)
        with self._sql_read("alerts") as sql:
            rows = sql.all(
                f"{_ALERT_COLUMNS} WHERE row_id > ? ORDER BY row_id LIMIT ?", [after_row, limit]
            )
        return [stored_alert(row) for row in rows]

    def recent_alerts(self, limit: int = 50) -> list[StoredAlert]:
        check_limit(limit)
        with self._sql_read("recent_alerts") as sql:
            rows = sql.all(f"{_ALERT_COLUMNS} ORDER BY row_id DESC LIMIT ?", [limit])
        return [stored_alert(row) for row in reversed(rows)]

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        with self._sql_read("get_alert") as sql:
            row = sql.one(f"{_ALERT_COLUMNS} WHERE alert_id = ?", [alert_id])
        return None if row is None else stored_alert(row)
