"""The store backends by id, and the one function the collector's config uses to open one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from canhgac.errors import StorageError
from collector.storage.base import Store
from collector.storage.postgres import PostgresStore
from collector.storage.sqlite import SqliteStore


def _open_sqlite(sqlite_path: Path | None, postgres_dsn: str | None) -> Store:
    if sqlite_path is None:
        raise StorageError("the sqlite store needs a database path", location="storage.sqlite")
    return SqliteStore(sqlite_path)


def _open_postgres(sqlite_path: Path | None, postgres_dsn: str | None) -> Store:
    if not postgres_dsn:
        raise StorageError("the postgres store needs a DSN", location="storage.postgres")
    return PostgresStore(postgres_dsn)


STORES: dict[str, Callable[[Path | None, str | None], Store]] = {
    "sqlite": _open_sqlite,
    "postgres": _open_postgres,
}


def open_store(kind: str, *, sqlite_path: Path | None, postgres_dsn: str | None) -> Store:
    """Open (connect to) the store of that kind; the caller runs `migrate()` next.

    Raises StorageError for an unknown kind, a missing argument, or a store that cannot open.
    """
    opener = STORES.get(kind)
    if opener is None:
        known = ", ".join(sorted(STORES))
        raise StorageError(f"unknown store kind {kind!r} (known: {known})", location="storage")
    return opener(sqlite_path, postgres_dsn)
