"""Every Store backend behind one fixture, so the contract tests run against each.

SQLite uses a file in tmp_path. PostgreSQL uses the server at CANHGAC_TEST_POSTGRES_DSN
(default postgresql://postgres@127.0.0.1:5432/test) with a fresh schema per test, dropped
afterwards. When that server is unreachable the PostgreSQL tests are skipped, except under
CI=true, where they fail: CI must never pass without having run them.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from collector.storage.base import Store
from collector.storage.migrations import Dialect
from collector.storage.postgres import PostgresStore
from collector.storage.sqlite import SqliteStore

POSTGRES_DSN = os.environ.get(
    "CANHGAC_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
START_POSTGRES_HINT = (
    "start one with trust auth and a database `test`, e.g. "
    "`docker run -d -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
    "-e POSTGRES_DB=test postgres:15`, or point CANHGAC_TEST_POSTGRES_DSN at one"
)

# A trigger that makes the database itself refuse one event in the middle of a batch, so the
# atomicity test breaks a real insert instead of mocking the store's code.
_POISON = {
    "sqlite": """
        CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_id = 'poison'
        BEGIN SELECT RAISE(ABORT, 'poisoned event'); END;
    """,
    "postgres": """
        CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event_id = 'poison' THEN RAISE EXCEPTION 'poisoned event'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison();
    """,
}
_UNPOISON = {"sqlite": "DROP TRIGGER poison", "postgres": "DROP TRIGGER poison ON events"}
_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema()",
}


@dataclass
class Backend:
    """One database under test: the store on it, and raw access through another connection."""

    kind: Dialect
    open: Callable[..., Store]
    run_script: Callable[[str], None]
    query: Callable[[str], list[tuple[Any, ...]]]
    opened: list[Store] = field(default_factory=list)

    def open_store(self, **options: Any) -> Store:
        """Another Store object on the same database, closed at teardown."""
        store = self.open(**options)
        self.opened.append(store)
        return store

    def poison(self) -> None:
        self.run_script(_POISON[self.kind])

    def unpoison(self) -> None:
        self.run_script(_UNPOISON[self.kind])

    def tables(self) -> set[str]:
        return {row[0] for row in self.query(_TABLES[self.kind])}


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN of a reachable server, or skip (fail under CI=true) with how to start one."""
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable ({exc}); {START_POSTGRES_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_DSN


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN whose search_path is a new schema of its own, dropped after the test."""
    schema = f"canhgac_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield make_conninfo(postgres_server, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def sqlite_backend(path: Path) -> Backend:
    def run_script(text: str) -> None:
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript(text)

    def query(text: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute(text).fetchall()

    return Backend("sqlite", lambda **options: SqliteStore(path, **options), run_script, query)


def postgres_backend(dsn: str) -> Backend:
    def run_script(text: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(text)

    def query(text: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(text).fetchall()

    return Backend("postgres", lambda **options: PostgresStore(dsn, **options), run_script, query)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        made = sqlite_backend(tmp_path / "collector.db")
    else:
        # Looked up only for this parameter, so SQLite runs need no server.
        made = postgres_backend(request.getfixturevalue("postgres_dsn"))
    yield made
    for store in made.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    """A migrated store of each backend kind."""
    opened = backend.open_store()
    opened.migrate()
    return opened
