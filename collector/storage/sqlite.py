"""The embedded store: one SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import chain
from pathlib import Path

from canhgac.errors import MigrationError, StorageError
from canhgac.v1 import alert_pb2, events_pb2
from collector.audit.store import AuditStoreMixin
from collector.dossiers.incidents import IncidentStoreMixin
from collector.dossiers.store import DossierStoreMixin
from collector.evidence.store import EvidenceReadsMixin
from collector.forward.store import OutboxStoreMixin, enqueue_in
from collector.storage.base import AgentRecord, BatchToStore, StoredEvent
from collector.storage.enrollment_sql import EnrollmentStoreMixin, Sql
from collector.storage.migrations import (
    VERSION_TABLE_SQL,
    Migration,
    apply_migrations,
    check_not_newer,
    load_migrations,
)
from collector.storage.reads import SharedReadsMixin
from collector.storage.rows import (
    EventRow,
    agent_row,
    alert_row,
    check_batch_key,
    check_limit,
    event_rows,
    stored_event,
)
from collector.triage.store import TriageStoreMixin
from collector.web.auth.store import AuthStoreMixin

_INSERT_BATCH = (
    "INSERT INTO batches (agent_id, seq, events, received_ns) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (agent_id, seq) DO NOTHING"
)
_INSERT_EVENTS = (
    "INSERT INTO events (event_id, agent_id, seq, time_ns, received_ns, category, data) VALUES "
)
_EVENT_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?)"
# Rows per multi-row INSERT: 128 x 7 parameters stays under SQLITE_MAX_VARIABLE_NUMBER on old
# SQLite builds (999). A remainder is written in power-of-two statements, so at most eight
# statement texts exist and the module's statement cache keeps all of them prepared.
_EVENTS_PER_STATEMENT = 128
_INSERT_ALERT = (
    "INSERT INTO alerts (alert_id, rule_id, severity, created_ns, agent_id, host, system_id, "
    "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING"
)
_SELECT_EVENTS_BY_ID = "SELECT row_id, seq, received_ns, data FROM events WHERE event_id IN ({})"
# first_seen_ns 0 means "not known", so a later record may fill it in; otherwise it is kept.
_UPSERT_AGENT = """
INSERT INTO agents (agent_id, hostname, version, first_seen_ns, last_seen_ns, last_seq, peer,
                    status)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id) DO UPDATE SET
    hostname = excluded.hostname,
    version = excluded.version,
    first_seen_ns = CASE WHEN agents.first_seen_ns = 0
                         THEN excluded.first_seen_ns ELSE agents.first_seen_ns END,
    last_seen_ns = excluded.last_seen_ns,
    last_seq = excluded.last_seq,
    peer = excluded.peer,
    status = excluded.status
"""
_DELETE_EXPIRED = "DELETE FROM events WHERE row_id IN (SELECT row_id FROM events WHERE {} LIMIT ?)"
# Keeps `IN (...)` lists well under SQLITE_MAX_VARIABLE_NUMBER on old SQLite builds (999).
_IDS_PER_QUERY = 500


class SqliteStore(
    SharedReadsMixin,
    EnrollmentStoreMixin,
    DossierStoreMixin,
    IncidentStoreMixin,
    AuthStoreMixin,
    OutboxStoreMixin,
    EvidenceReadsMixin,
    AuditStoreMixin,
    TriageStoreMixin,
):
    """Store in one SQLite file (the embedded deployment).

    The file is put in WAL mode with synchronous=FULL, so a batch is on disk when store_batch
    returns: the collector may acknowledge it. Other processes may open the same file at the
    same time, read-write or with `read_only=True` (the CLI reading alerts while the collector
    writes). One object may be shared between threads: calls are serialized by a lock.
    Every SQLite failure is raised as StorageError, naming the file.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], int] = time.time_ns,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self._path = path
        self._read_only = read_only
        self._clock = clock
        self._migrations = migrations
        self._lock = threading.Lock()
        try:
            self._conn: sqlite3.Connection | None = _connect(path, read_only, busy_timeout_s)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database: {exc}", location=str(path)) from exc

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r}, read_only={self._read_only})"

    @contextmanager
    def _session(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StorageError(f"{operation}: store is closed", location=str(self._path))
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StorageError(f"{operation}: {exc}", location=str(self._path)) from exc

    @contextmanager
    def _sql_read(self, operation: str) -> Iterator[Sql]:
        with self._session(operation) as conn:
            yield Sql(conn.execute, "sqlite")

    @contextmanager
    def _sql_write(self, operation: str) -> Iterator[Sql]:
        with self._session(operation) as conn, _transaction(conn):
            yield Sql(conn.execute, "sqlite")

    def migrate(self) -> int:
        """Apply pending migrations. A read-only store only checks the version is current."""
        migrations = self._migrations or load_migrations("sqlite")
        with self._session("migrate") as conn:
            target = _SqliteMigrationTarget(conn, str(self._path))
            if not self._read_only:
                return apply_migrations(target, migrations, self._clock)
            current = target.applied_version()
            check_not_newer(current, migrations)
            if current < migrations[-1].version:
                raise MigrationError(
                    f"database schema is version {current}, this program needs "
                    f"{migrations[-1].version}: open it read-write once to migrate",
                    location=str(self._path),
                )
            return current

    def schema_version(self) -> int:
        with self._session("schema_version") as conn:
            return _SqliteMigrationTarget(conn, str(self._path)).applied_version()

    def store_batch(
        self, agent_id: str, seq: int, events: Sequence[events_pb2.Event], received_ns: int
    ) -> bool:
        check_batch_key(seq, received_ns)
        # Built before taking the lock, so other threads need not wait while events serialize.
        rows = event_rows(agent_id, seq, received_ns, events)
        with self._session("store_batch") as conn, _transaction(conn):
            inserted = conn.execute(_INSERT_BATCH, (agent_id, seq, len(rows), received_ns))
            if inserted.rowcount == 0:
                return False
            _insert_events(conn, rows)
        return True

    def store_batches(self, batches: Sequence[BatchToStore]) -> list[bool]:
        for b in batches:
            check_batch_key(b.seq, b.received_ns)
        prepared = [(b, event_rows(b.agent_id, b.seq, b.received_ns, b.events)) for b in batches]
        results: list[bool] = []
        with self._session("store_batches") as conn, _transaction(conn):
            new_rows: list[EventRow] = []
            for b, rows in prepared:
                inserted = conn.execute(
                    _INSERT_BATCH, (b.agent_id, b.seq, len(rows), b.received_ns)
                )
                stored = inserted.rowcount > 0
                results.append(stored)
                if stored:
                    new_rows.extend(rows)
            _insert_events(conn, new_rows)
        return results

    def events_by_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]:
        wanted = list(dict.fromkeys(event_ids))
        rows = []
        with self._session("events_by_ids") as conn:
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                # Only "?" placeholders are interpolated; the ids are bound parameters.
                query = _SELECT_EVENTS_BY_ID.format(marks)
                rows += conn.execute(query, chunk).fetchall()
        rows.sort(key=lambda row: row[0])
        return [stored_event(row) for row in rows]

    def delete_events_before(
        self,
        before_ns: int,
        *,
        agent_ids: Sequence[str] | None = None,
        except_agent_ids: Sequence[str] = (),
        limit: int = 10_000,
    ) -> int:
        check_limit(limit)
        where = "time_ns < ? AND received_ns < ?"
        params: list[object] = [before_ns, before_ns]
        if agent_ids is not None:
            if not agent_ids:
                return 0
            where += f" AND agent_id IN ({', '.join('?' * len(agent_ids))})"
            params += agent_ids
        if except_agent_ids:
            where += f" AND agent_id NOT IN ({', '.join('?' * len(except_agent_ids))})"
            params += except_agent_ids
        # Only "?" placeholders are interpolated; the values are bound parameters.
        query = _DELETE_EXPIRED.format(where)
        with self._session("delete_events_before") as conn, _transaction(conn):
            return conn.execute(query, [*params, limit]).rowcount

    def upsert_agent(self, agent: AgentRecord) -> None:
        with self._session("upsert_agent") as conn:
            conn.execute(_UPSERT_AGENT, agent_row(agent))

    def insert_alert(self, alert: alert_pb2.Alert) -> bool:
        row = alert_row(alert)
        with self._session("insert_alert") as conn:
            return conn.execute(_INSERT_ALERT, row).rowcount == 1

    def insert_alerts(
        self, alerts: Sequence[alert_pb2.Alert], outbox: Sequence[str] = ()
    ) -> list[bool]:
        rows = [alert_row(a) for a in alerts]
        with self._session("insert_alerts") as conn, _transaction(conn):
            new = [conn.execute(_INSERT_ALERT, row).rowcount == 1 for row in rows]
            if outbox:
                ids = [a.id for a, n in zip(alerts, new, strict=True) if n]
                enqueue_in(Sql(conn.execute, "sqlite"), outbox, "alert", ids, self._clock())
            return new

    def close(self) -> None:
        """Close the connection; further calls raise StorageError. Closing twice is allowed."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StorageError(f"close: {exc}", location=str(self._path)) from exc


def _insert_events(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    """Insert event rows with a few multi-row statements rather than one statement per row.

    The sqlite3 module lets go of the interpreter lock around every statement it steps. With
    `executemany` that is once per row, and while the event loop thread is busy each hand-back
    waits up to the switch interval: measured, a store thread beside a busy thread inserted
    35 times slower row by row than 128 rows a statement. A statement per 128 rows keeps the
    hand-overs rare.
    """
    i, n = 0, len(rows)
    while i < n:
        size = _EVENTS_PER_STATEMENT
        while size > n - i:
            size //= 2
        conn.execute(_events_statement(size), list(chain.from_iterable(rows[i : i + size])))
        i += size


@cache
def _events_statement(rows: int) -> str:
    return _INSERT_EVENTS + ", ".join([_EVENT_PLACEHOLDERS] * rows)


def _connect(path: Path, read_only: bool, busy_timeout_s: float) -> sqlite3.Connection:
    # isolation_level=None: the module must not open transactions behind our back; every
    # transaction below is an explicit BEGIN IMMEDIATE ... COMMIT. `timeout` is SQLite's
    # busy timeout: wait for another process's write lock instead of failing at once.
    if read_only:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            conn.close()
            raise StorageError(f"cannot use WAL mode (got {mode!r})", location=str(path))
    # 64 MiB of page cache keeps the hot index pages of a busy ingest in memory.
    conn.execute("PRAGMA cache_size=-65536")
    # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and the
    # collector acknowledges a batch as soon as store_batch returns.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a concurrent writer waits on the busy
    # timeout instead of failing with SQLITE_BUSY halfway through the transaction.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # Anything, a cancellation included, must leave no half transaction; then re-raise.
        conn.rollback()
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> Iterator[str]:
    """Split a migration file into statements.

    sqlite3 has no multi-statement call that stays inside an open transaction (executescript
    commits it first), so statements run one by one. complete_statement knows about quotes,
    comments and trigger bodies, so a `;` inside them does not end a statement.
    """
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise MigrationError("unterminated statement at end of file")


class _SqliteMigrationTarget:
    """MigrationTarget over an open connection (the caller holds the store's lock)."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self._conn = conn
        self._location = location

    def ensure_version_table(self) -> None:
        self._conn.execute(VERSION_TABLE_SQL)

    def applied_version(self) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if exists is None:
            return 0
        row = self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row.fetchone()[0])

    def apply(self, migration: Migration, applied_ns: int) -> None:
        try:
            with _transaction(self._conn):
                if self.applied_version() >= migration.version:
                    return  # another process got there first
                for statement in _statements(migration.sql):
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_migrations (version, applied_ns) VALUES (?, ?)",
                    (migration.version, applied_ns),
                )
        except (sqlite3.Error, MigrationError) as exc:
            message = exc.message if isinstance(exc, MigrationError) else str(exc)
            raise MigrationError(
                f"migration failed and was rolled back: {message}",
                location=f"{self._location}: {migration.name}",
            ) from exc
